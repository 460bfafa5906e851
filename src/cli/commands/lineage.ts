/** `trellis lineage ID|NAME`: an object and its ancestors, breadth first. */
import { Command, Option } from 'commander';
import { printJson, printTable } from '../output';
import { parsePositiveInteger, withClient, withCommonOptions, withJsonOption, type ListingOptions } from '../options';

export function lineageCommand(): Command {
  const command = new Command('lineage')
    .description('an object and its parents, breadth first (the object itself at depth 0)')
    .argument('<ref>', 'an object id or a name')
    .addOption(new Option('--max-depth <n>', 'how many generations (default 10)').argParser(parsePositiveInteger));
  return withJsonOption(withCommonOptions(command)).action(
    (ref: string, options: ListingOptions & { maxDepth?: number }) =>
      withClient(options, async (client) => {
        const lineage = await client.lineage(ref, options.maxDepth === undefined ? {} : { maxDepth: options.maxDepth });
        if (options.json) return printJson(lineage);
        const rows = lineage.map((entry) => [
          String(entry.depth),
          entry.id,
          entry.typename ?? '',
          entry.name === undefined ? '' : `${entry.name}${entry.version === undefined ? '' : `@${entry.version}`}`,
          entry.missing ? 'missing' : '',
        ]);
        printTable(['>DEPTH', 'ID', 'TYPE', 'NAME', 'STATE'], rows);
      }),
  );
}
