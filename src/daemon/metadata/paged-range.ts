/**
 * Reads a key range of etcd in pages: a range request with a limit, then the next from just
 * after the last key, every page at the first page's revision, so the pages add up to one
 * consistent snapshot. One request for everything would not do: the etcd client refuses a
 * reply over 4 MiB (RESOURCE_EXHAUSTED), about 21,000 small object records.
 */
import type { IKeyValue } from 'etcd3';
import type { EtcdConnection } from './etcd-connection';

/** Keys a page holds at most: well under 4 MiB for records of a few KiB. */
export const RANGE_PAGE_KEYS = 500;

/** A key range relative to the cluster prefix: start included, end excluded. */
export interface KeyRange {
  readonly start: string;
  readonly end: string;
}

/** The range of every key that starts with `prefix`. */
export function prefixRange(prefix: string): KeyRange {
  const last = prefix.charCodeAt(prefix.length - 1);
  return { start: prefix, end: prefix.slice(0, -1) + String.fromCharCode(last + 1) };
}

/**
 * Hands every key in `range` to `visit`, a page at a time, and returns the revision they were
 * read at. Errors: Unavailable (etcd, or the revision compacted away between two pages).
 */
export async function readPaged(
  connection: EtcdConnection,
  what: string,
  range: KeyRange,
  visit: (page: IKeyValue[]) => void,
  pageKeys = RANGE_PAGE_KEYS,
): Promise<bigint> {
  let start = range.start;
  let revision: string | undefined;
  for (;;) {
    const from = start;
    const at = revision;
    const page = await connection.run(what, (kv) => {
      const request = kv.getAll().inRange({ start: from, end: range.end }).limit(pageKeys);
      return (at === undefined ? request : request.revision(at)).exec();
    });
    revision ??= page.header.revision;
    visit(page.kvs);
    if (!page.more || page.kvs.length === 0) return BigInt(revision);
    // The smallest key after the last one read.
    start = page.kvs[page.kvs.length - 1].key.toString() + '\0';
  }
}
