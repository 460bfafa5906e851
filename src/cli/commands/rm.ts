/** `trellis rm ID...`: deletes objects (all or none). */
import { Command } from 'commander';
import { withClient, withCommonOptions, type CommonOptions } from '../options';

export function rmCommand(): Command {
  const command = new Command('rm')
    .description('delete objects; a named object or a member needs --force')
    .argument('<ids...>', 'object ids')
    .option('-f, --force', 'delete even when a name or another object refers to it');
  return withCommonOptions(command).action((ids: string[], options: CommonOptions & { force?: boolean }) =>
    withClient(options, (client) => client.delete(ids, { force: options.force ?? false })),
  );
}
