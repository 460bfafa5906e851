/**
 * Which client requests read names from the daemon's memory, so that a cluster daemon can
 * hold them back while it cannot vouch for its view of the names (cluster/view-freshness.ts),
 * and which names, so that it can read the ones it does not hold first (MetaService.loadNames).
 * A request that names an object by id reads no name: an id's contents never change.
 */
import { isObjectId } from '../protocol/ids';
import type { MetaService } from './metadata/meta-service';

/** Requests that always read names. */
const NAME_KINDS = new Set(['getName', 'listNames', 'versions']);
/** Requests whose `ref` is a name or an id. */
const REF_KINDS = new Set(['getObject', 'getMeta', 'label', 'lineage', 'migrate', 'exportArchive']);

/** What the request reads, to complete "cannot ..." in an error; undefined when it reads no name. */
export function nameRead(kind: string, body: unknown): string | undefined {
  const fields = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  if (NAME_KINDS.has(kind)) {
    return typeof fields.name === 'string' ? `${kind} ${JSON.stringify(fields.name)}` : kind;
  }
  if (REF_KINDS.has(kind) && typeof fields.ref === 'string' && !isObjectId(fields.ref)) {
    return `${kind} ${JSON.stringify(fields.ref)}`;
  }
  // getMany: a list of refs, any of which may be a name.
  if (kind === 'getObjects' && Array.isArray(fields.refs)) {
    const name: unknown = fields.refs.find((ref) => typeof ref === 'string' && !isObjectId(ref));
    if (name !== undefined) return `${kind} ${JSON.stringify(name)}`;
  }
  return undefined;
}

/** Batch requests whose entries (under these fields) carry their own parents. */
const BATCH_FIELDS = ['blobs', 'objects'];

const NO_NAMES: readonly string[] = Object.freeze([]);

/**
 * The names a request reads (getName's name, refs, parents, its entries' parents), to load
 * before it runs; malformed fields are left to the request's own checks. Every request asks, so
 * one that reads none (most of them) allocates nothing.
 */
export function namesRead(kind: string, body: unknown): readonly string[] {
  const fields = asFields(body);
  let names: string[] | undefined;
  if (NAME_KINDS.has(kind)) names = addName(names, fields.name);
  names = addName(names, fields.ref);
  names = addNames(names, fields.refs);
  names = addNames(names, fields.parents);
  for (let i = 0; i < BATCH_FIELDS.length; i++) {
    const entries = fields[BATCH_FIELDS[i]];
    if (Array.isArray(entries)) for (const entry of entries) names = addNames(names, asFields(entry).parents);
  }
  return names ?? NO_NAMES;
}

/** `names` with `value` added when it is a name (not an id); made on the first one. */
function addName(names: string[] | undefined, value: unknown): string[] | undefined {
  if (typeof value !== 'string' || isObjectId(value)) return names;
  (names ??= []).push(value);
  return names;
}

function addNames(names: string[] | undefined, values: unknown): string[] | undefined {
  if (Array.isArray(values)) for (const value of values) names = addName(names, value);
  return names;
}

const NO_FIELDS: Record<string, unknown> = Object.freeze({});

function asFields(body: unknown): Record<string, unknown> {
  return body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : NO_FIELDS;
}

/**
 * Runs a request once the names it reads can be answered: in a cluster, a view this daemon can
 * vouch for (it waits to hear from etcd first, or fails with Unavailable), and the names it does
 * not hold read. The one gate for every path that answers names: the local socket, RPC and HTTP.
 * `run`'s result, or a promise of it when anything had to wait.
 */
export function afterNameReads(meta: MetaService, kind: string, body: unknown, run: () => unknown): unknown {
  const waiting = nameReadsPending(meta, kind, body);
  return waiting ? waiting.then(run) : run();
}

/**
 * What afterNameReads waits for before it runs the request: undefined when nothing (most
 * requests: every put, every get by id), so that a caller can run it with no closure made.
 */
export function nameReadsPending(meta: MetaService, kind: string, body: unknown): Promise<void> | undefined {
  const reads = nameRead(kind, body);
  const gate = reads === undefined ? undefined : meta.namesCurrent(reads);
  const wanted = namesRead(kind, body);
  if (gate === undefined && wanted.length === 0) return undefined;
  const load = (): Promise<void> | undefined => (wanted.length === 0 ? undefined : meta.loadNames(wanted));
  return gate ? gate.then(load) : load();
}
