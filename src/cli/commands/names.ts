/** `trellis names [PATTERN]`: names and the ids they point at. */
import { Command } from 'commander';
import { printJson, printTable } from '../output';
import { withClient, withCommonOptions, withJsonOption, type ListingOptions } from '../options';
import type { TrellisClient } from '../../connect';
import { isTrellisError } from '../../errors';

export function namesCommand(): Command {
  const command = new Command('names')
    .description('names and the objects they point at')
    .argument('[pattern]', 'a glob over names, such as "models/*"');
  return withJsonOption(withCommonOptions(command)).action((pattern: string | undefined, options: ListingOptions) =>
    withClient(options, async (client) => {
      const names = await resolveNames(client, pattern);
      if (options.json) return printJson(names);
      printTable(
        ['NAME', 'ID'],
        names.map(({ name, id }) => [name, id]),
      );
    }),
  );
}

/** Each name with its id; a name dropped between the listing and its lookup is left out. */
export async function resolveNames(
  client: TrellisClient,
  pattern?: string,
): Promise<Array<{ name: string; id: string }>> {
  const names = await client.listNames({ pattern });
  const ids = await Promise.all(
    names.map((name) =>
      client.getName(name).catch((error: unknown) => {
        if (isTrellisError(error, 'NameNotFound')) return undefined;
        throw error;
      }),
    ),
  );
  return names.flatMap((name, i) => (ids[i] === undefined ? [] : [{ name, id: ids[i]! }]));
}
