/** `trellis persist ID [--ttl S]`: makes an object visible cluster-wide, optionally expiring. */
import { Command } from 'commander';
import { ttlOption, withClient, withCommonOptions, type CommonOptions } from '../options';

export function persistCommand(): Command {
  const command = new Command('persist')
    .description('make an object visible to every instance; with --ttl, expire it')
    .argument('<id>', 'the object id')
    .addOption(ttlOption());
  return withCommonOptions(command).action((id: string, options: CommonOptions & { ttl?: number }) =>
    withClient(options, (client) => client.persist(id, options.ttl === undefined ? {} : { ttl: options.ttl })),
  );
}
