/**
 * `trellis ls [PATTERN] [--label k=v]`: objects, newest first, with their names and labels.
 * PATTERN is a glob over the typename, as in listObjects. Blobs that are members of a listed
 * object (a DataFrame's buffers) are folded into it unless --all.
 */
import { Command, Option } from 'commander';
import type { TrellisClient } from '../../connect';
import { isTrellisError } from '../../errors';
import type { ObjectMeta, ObjectSummary } from '../../protocol/messages';
import { formatAge, formatBytes, formatLabels, printJson, printTable } from '../output';
import {
  labelOption,
  parsePositiveInteger,
  withClient,
  withCommonOptions,
  withJsonOption,
  type ListingOptions,
} from '../options';
import { resolveNames } from './names';

/** Metadata lookups in flight at once. */
const META_CONCURRENCY = 64;

export interface ListedObject extends ObjectSummary {
  names: string[];
  labels: Record<string, string>;
}

interface LsOptions extends ListingOptions {
  label?: Record<string, string>;
  all?: boolean;
  limit?: number;
}

export function lsCommand(): Command {
  const command = new Command('ls')
    .description('objects, newest first, with names and labels')
    .argument('[pattern]', 'a glob over the typename, such as "trellis::DataFrame"')
    .addOption(labelOption('only objects with this label (repeatable)'))
    .option('-a, --all', 'also list blobs that are members of other objects')
    .addOption(
      new Option('--limit <n>', "at most this many objects (default: the daemon's, 1000)").argParser(
        parsePositiveInteger,
      ),
    );
  return withJsonOption(withCommonOptions(command)).action((pattern: string | undefined, options: LsOptions) =>
    withClient(options, async (client) => {
      const objects = await listObjects(client, pattern, options);
      if (options.json) return printJson(objects);
      const now = Date.now();
      const rows = objects.map((object) => [
        object.id,
        object.typename,
        formatBytes(object.nbytes),
        formatAge(now - object.createdAt),
        object.names.join(','),
        formatLabels(object.labels),
      ]);
      printTable(['ID', 'TYPE', '>SIZE', '>AGE', 'NAMES', 'LABELS'], rows);
    }),
  );
}

async function listObjects(
  client: TrellisClient,
  pattern: string | undefined,
  options: LsOptions,
): Promise<ListedObject[]> {
  const [summaries, names] = await Promise.all([
    client.listObjects({ pattern, limit: options.limit }),
    resolveNames(client),
  ]);
  const metas = await metadataOf(client, summaries);
  const members = new Set<string>();
  for (const meta of metas.values()) collectMembers(meta, members);
  const namesOf = new Map<string, string[]>();
  for (const { name, id } of names) namesOf.set(id, [...(namesOf.get(id) ?? []), name]);
  const wanted = Object.entries(options.label ?? {});
  return summaries
    .filter((summary) => metas.has(summary.id))
    .filter((summary) => options.all || !members.has(summary.id) || namesOf.has(summary.id))
    .map((summary) => ({
      ...summary,
      names: namesOf.get(summary.id) ?? [],
      labels: metas.get(summary.id)!.labels ?? {},
    }))
    .filter((object) => wanted.every(([key, value]) => object.labels[key] === value));
}

/** Every listed object's metadata; objects deleted since the listing are left out. */
async function metadataOf(client: TrellisClient, summaries: ObjectSummary[]): Promise<Map<string, ObjectMeta>> {
  const metas = new Map<string, ObjectMeta>();
  for (let start = 0; start < summaries.length; start += META_CONCURRENCY) {
    const slice = summaries.slice(start, start + META_CONCURRENCY);
    const found = await Promise.all(
      slice.map((summary) =>
        client.getMeta(summary.id).catch((error: unknown) => {
          if (isTrellisError(error, 'ObjectNotFound')) return undefined;
          throw error;
        }),
      ),
    );
    found.forEach((meta, i) => meta && metas.set(slice[i].id, meta));
  }
  return metas;
}

function collectMembers(meta: ObjectMeta, into: Set<string>): void {
  for (const member of Object.values(meta.members ?? {})) {
    into.add(member.id);
    collectMembers(member, into);
  }
}
