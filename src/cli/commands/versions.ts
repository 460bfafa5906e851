/** `trellis versions NAME`: the versions of a name, newest first. */
import { Command } from 'commander';
import { formatAge, printJson, printTable } from '../output';
import { withClient, withCommonOptions, withJsonOption, type ListingOptions } from '../options';

export function versionsCommand(): Command {
  const command = new Command('versions')
    .description('the versions of a name, newest first')
    .argument('<name>', 'the name');
  return withJsonOption(withCommonOptions(command)).action((name: string, options: ListingOptions) =>
    withClient(options, async (client) => {
      const versions = await client.versions(name);
      if (options.json) return printJson(versions);
      const now = Date.now();
      printTable(
        ['>VERSION', 'ID', '>AGE'],
        versions.map((entry) => [String(entry.version), entry.id, formatAge(now - entry.createdAt)]),
      );
    }),
  );
}
