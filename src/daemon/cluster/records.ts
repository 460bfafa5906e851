/**
 * What the cluster keeps in etcd about objects and names, and where. Keys are relative to the
 * cluster prefix (see EtcdConnection), beside Membership's `instances/`:
 *
 *   objects/<id>   msgpack ObjectRecord: one persisted object (members are separate keys), on
 *                  the lease of the daemon that holds its bytes
 *   rewrites/<instance>  JSON list of the instance's ids whose records were last written again
 *                  (by it, or labelled by any daemon), on its lease (see rewriteKey)
 *   names/<name>   JSON { id, version, last, versions: [{ version, id, createdAt }] }: the object
 *                  it publishes now and its kept versions, newest first (one key, so that one
 *                  transaction checks and writes both), on the lease of the daemon that holds
 *                  the latest object. Older daemons wrote the bare id: read as version 1.
 *   pins/<instance>/<name>  empty: a hint that the name points (or pointed) to an object of the
 *                  instance, on that instance's lease, put in the transaction that points the name
 *                  there (see pinKey). Each daemon watches its own pins only.
 *
 * Both vanish with the owning daemon's lease, so a dead daemon's objects and names leave the
 * cluster view on their own. Records never say where bytes live (segment, offset): a blob may
 * move (spilling) without its record changing.
 */
import { Packr } from 'msgpackr';
import { instanceOf, isObjectId } from '../../protocol/ids';
import type { NameVersion, ObjectMeta, ObjectSummary, ParentRef } from '../../protocol/messages';
import type { NameHistory } from '../name-history';
import { isParentList, isPlainMap } from '../record-checks';

export const OBJECTS_PREFIX = 'objects/';
export const NAMES_PREFIX = 'names/';
export const REWRITES_PREFIX = 'rewrites/';
export const PINS_PREFIX = 'pins/';

/** The persisted form of one object; its id is in the key, its owner in the id. */
export interface ObjectRecord {
  typename: string;
  nbytes: number;
  createdAt: number;
  labels: Record<string, string>;
  fields: Record<string, unknown>;
  /**
   * member key -> object id; each member has a record of its own, except those described in
   * `remoteMembers`.
   */
  members: Record<string, string>;
  /**
   * Of a global object (putGlobal): its members on other instances, as they were described when
   * it was made. Their owners need not persist them, so the cluster view may not hold them.
   */
  remoteMembers?: Record<string, ObjectMeta>;
  /** True when the object is a blob: its bytes are only on its owner. */
  blob: boolean;
  /** Lineage: what the object was made from; absent when nothing (and in older records). */
  derivedFrom?: ParentRef[];
  /** Milliseconds since the epoch after which the object is gone (persist's ttl); absent: never. */
  expiresAt?: number;
}

/** A record as a daemon's cache holds it: decoded, with its id, owner and etcd lease. */
export interface CachedRecord extends ObjectRecord {
  readonly id: string;
  readonly instanceId: number;
  readonly lease: string;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export const objectKey = (id: string): string => OBJECTS_PREFIX + id;
export const nameKey = (name: string): string => NAMES_PREFIX + name;

/** What every `objects/` key of an instance's objects starts with (ids start with the instance id). */
export function instanceObjectsPrefix(instanceId: number): string {
  return OBJECTS_PREFIX + 'o' + instanceId.toString(16).padStart(4, '0');
}

/**
 * `rewrites/<instance>`: the ids of the instance's objects whose records were just written again
 * (new labels, through any daemon; a new ttl, by the owner), put in the same transaction as the
 * records. Daemons watch deletes of `objects/` only,
 * so that creating objects costs them nothing; this one key per instance tells them which
 * cached records changed.
 */
export function rewriteKey(instanceId: number): string {
  return REWRITES_PREFIX + instanceId.toString(16).padStart(4, '0');
}

export function encodeRewrites(ids: readonly string[]): Buffer {
  return Buffer.from(JSON.stringify(ids));
}

/** The ids in a `rewrites/` value; nothing when it is not well formed. */
export function decodeRewrites(value: Buffer): string[] {
  try {
    const parsed: unknown = JSON.parse(value.toString());
    return Array.isArray(parsed) ? parsed.filter(isObjectId) : [];
  } catch {
    return [];
  }
}

export function encodeRecord(record: ObjectRecord): Buffer {
  return packr.pack(record);
}

/** An encoded record with other labels, everything else as it was. */
export function relabeledRecord(value: Buffer, labels: Record<string, string>): Buffer {
  return packr.pack({ ...(packr.unpack(value) as ObjectRecord), labels });
}

/** The id in an `objects/<id>` key, or undefined for anything else. */
export function idOfObjectKey(key: string): string | undefined {
  const id = key.startsWith(OBJECTS_PREFIX) ? key.slice(OBJECTS_PREFIX.length) : undefined;
  return isObjectId(id) ? id : undefined;
}

/**
 * `pins/<instance>/`: the pins of one instance's objects. Names are not mirrored by every
 * daemon; a daemon learns which names point to its objects (they pin them against deletes, and
 * the latest ones it puts back after a lost lease) from these keys, which every write that
 * points a name at an object puts. A pin may outlive the reference (the name moved on, or went
 * with another lease): readers check the name itself, and the owner deletes stale ones.
 */
export function instancePinsPrefix(instanceId: number): string {
  return PINS_PREFIX + instanceId.toString(16).padStart(4, '0') + '/';
}

export const pinKey = (instanceId: number, name: string): string => instancePinsPrefix(instanceId) + name;

/** The name in a `pins/<instance>/<name>` key. */
export function nameOfPinKey(key: string): string | undefined {
  if (!key.startsWith(PINS_PREFIX)) return undefined;
  const slash = key.indexOf('/', PINS_PREFIX.length);
  return slash < 0 || slash === key.length - 1 ? undefined : key.slice(slash + 1);
}

/** The name in a `names/<name>` key. */
export function nameOfKey(key: string): string | undefined {
  return key.startsWith(NAMES_PREFIX) && key.length > NAMES_PREFIX.length ? key.slice(NAMES_PREFIX.length) : undefined;
}

/**
 * Reads a record from etcd. Anyone with access to etcd can write there, so a value that does not
 * decode into a well-formed record is ignored rather than trusted. Bytes in its fields are views
 * of `value`: whoever keeps the record gives them their own (ownBytes).
 */
export function decodeRecord(key: string, value: Buffer, lease: string): CachedRecord | undefined {
  const id = idOfObjectKey(key);
  if (id === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = packr.unpack(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const r = parsed as Record<string, unknown>;
  if (typeof r.typename !== 'string' || typeof r.nbytes !== 'number' || typeof r.createdAt !== 'number')
    return undefined;
  if (!isPlainMap(r.labels) || !isPlainMap(r.fields) || !isPlainMap(r.members)) return undefined;
  if (!Object.values(r.members).every(isObjectId)) return undefined;
  if (r.expiresAt !== undefined && typeof r.expiresAt !== 'number') return undefined;
  if (r.remoteMembers !== undefined && !describesMembers(r.remoteMembers, r.members as Record<string, string>))
    return undefined;
  if (r.derivedFrom !== undefined && !isParentList(r.derivedFrom)) return undefined;
  return {
    id,
    instanceId: instanceOf(id),
    lease,
    typename: r.typename,
    nbytes: r.nbytes,
    createdAt: r.createdAt,
    labels: r.labels as Record<string, string>,
    // Views of `value`: most reads only look (a listing, a label, a delete's plan); what is
    // kept (RemoteRecords' cache) is given bytes of its own there, once.
    fields: r.fields,
    members: r.members as Record<string, string>,
    blob: r.blob === true,
    expiresAt: r.expiresAt as number | undefined,
    ...(r.remoteMembers === undefined ? {} : { remoteMembers: r.remoteMembers as Record<string, ObjectMeta> }),
    ...(r.derivedFrom === undefined ? {} : { derivedFrom: r.derivedFrom as ParentRef[] }),
  };
}

/** Whether `value` describes some of `members`: a map of member key to a meta with that id. */
function describesMembers(value: unknown, members: Record<string, string>): boolean {
  if (!isPlainMap(value)) return false;
  return Object.entries(value).every(
    ([key, meta]) => isPlainMap(meta) && meta.id === members[key] && isPlainMap(meta.members),
  );
}

/** The id a `names/` value publishes now, or undefined when it is not well formed. */
export function decodeNameTarget(value: Buffer): string | undefined {
  return decodeNameHistory(value)?.versions[0].id;
}

export function encodeNameHistory(history: NameHistory): Buffer {
  const { versions, last } = history;
  return Buffer.from(JSON.stringify({ id: versions[0].id, version: versions[0].version, last, versions }));
}

/** A `names/` value's history; a bare id (the format before versions) is version 1. */
export function decodeNameHistory(value: Buffer): NameHistory | undefined {
  const text = value.toString();
  if (isObjectId(text)) return { versions: [{ version: 1, id: text, createdAt: 0 }], last: 1 };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainMap(parsed) || !Array.isArray(parsed.versions) || parsed.versions.length === 0) return undefined;
  const versions = parsed.versions as unknown[];
  const wellFormed = versions.every(
    (v) => isPlainMap(v) && Number.isSafeInteger(v.version) && isObjectId(v.id) && Number.isFinite(v.createdAt),
  );
  if (!wellFormed) return undefined;
  const kept = versions as NameVersion[];
  const last = Number.isSafeInteger(parsed.last) ? (parsed.last as number) : kept[0].version;
  return { versions: kept.map(({ version, id, createdAt }) => ({ version, id, createdAt })), last };
}

export function isExpired(record: ObjectRecord, now = Date.now()): boolean {
  return record.expiresAt !== undefined && record.expiresAt <= now;
}

export function summaryOf(record: CachedRecord): ObjectSummary {
  return { id: record.id, typename: record.typename, nbytes: record.nbytes, sealed: true, createdAt: record.createdAt };
}

export function shallowMeta(record: CachedRecord, members: Record<string, ObjectMeta>): ObjectMeta {
  const meta: ObjectMeta = {
    id: record.id,
    typename: record.typename,
    nbytes: record.nbytes,
    instanceId: record.instanceId,
    createdAt: record.createdAt,
    labels: record.labels,
    fields: record.fields,
    members,
  };
  if (record.derivedFrom !== undefined && record.derivedFrom.length > 0) meta.parents = record.derivedFrom;
  return meta;
}
