/**
 * What the durable catalog keeps, and its encoding. Records are msgpack with the options the
 * protocol uses (plain maps, no msgpackr records), so any msgpack reader can inspect a catalog,
 * and lmdb stores them as opaque bytes: encoding happens before a transaction starts, so nothing
 * inside one can fail halfway on a value that does not encode.
 *
 * A record never says where bytes live in memory (segment, offset); a blob's bytes are in its
 * file (DIR/blobs/<id>) or, when small, inline in the catalog.
 */
import { Packr } from 'msgpackr';
import { isObjectId } from '../../protocol/ids';
import { isParentList, isPlainMap } from '../record-checks';
import type { ObjectDescription } from '../object-table';

/** Where a persisted blob's bytes are, and how to check them when they are loaded. */
export interface BlobRecord {
  size: number;
  /** 'crc32:<8 hex digits>' (see checksum.ts). */
  checksum: string;
  /** 'inline': in the catalog's inline table (small blobs); 'file': DIR/blobs/<id>. */
  stored: 'inline' | 'file';
}

/** One persisted object: a blob or a metadata object (whose members have records of their own). */
export interface PersistedObject extends ObjectDescription {
  /** Blobs only. */
  blob?: BlobRecord;
  /** Milliseconds since the epoch when the object expires (persist's ttl); null: never. */
  expiresAt: number | null;
}

/** One version of a name: what it pointed to from `createdAt`. */
export interface NameVersion {
  version: number;
  id: string;
  createdAt: number;
}

/**
 * A name and its history, newest first: `versions[0]` is what the name points to now. Until
 * names have versions, a name is one entry `{ version: 1, id, createdAt }`.
 */
export interface PersistedName {
  name: string;
  versions: NameVersion[];
  /** The highest version ever given (absent in records written before it was kept). */
  last?: number;
}

/** Version 1 of the catalog's layout; a catalog written by a later format is refused. */
export const CATALOG_FORMAT = 1;

// copyBuffers: binary values in fields are copied out of lmdb's buffer, which it reuses.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

export function encodeObject(record: PersistedObject): Buffer {
  const { id, typename, nbytes, createdAt, members, fields, labels, remoteMembers, derivedFrom, blob, expiresAt } =
    record;
  return packr.pack({
    id,
    typename,
    nbytes,
    createdAt,
    members,
    fields,
    labels,
    ...(remoteMembers === undefined ? {} : { remoteMembers }),
    ...(derivedFrom === undefined || derivedFrom.length === 0 ? {} : { derivedFrom }),
    ...(blob === undefined ? {} : { blob: { size: blob.size, checksum: blob.checksum, stored: blob.stored } }),
    expiresAt,
  });
}

export function encodeName(record: PersistedName): Buffer {
  const versions = record.versions.map(({ version, id, createdAt }) => ({ version, id, createdAt }));
  return packr.pack(record.last === undefined ? { versions } : { versions, last: record.last });
}

/**
 * Decodes the record stored under `id`; a reason string when it is not a well-formed record
 * (the catalog is only written by this module, so that means damage on disk or a bug).
 */
export function decodeObject(id: string, bytes: Uint8Array): PersistedObject | string {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (error) {
    return `undecodable record (${(error as Error).message})`;
  }
  if (!isPlainMap(value)) return 'the record is not a map';
  const r = value;
  if (r.id !== id) return `the record names id ${String(r.id)}`;
  if (typeof r.typename !== 'string') return 'typename is not a string';
  if (!isCount(r.nbytes) || !Number.isFinite(r.createdAt)) return 'nbytes or createdAt is not a number';
  if (!isPlainMap(r.members) || !Object.values(r.members).every(isObjectId)) return 'members is not a map of ids';
  if (!isPlainMap(r.fields) || !isPlainMap(r.labels)) return 'fields or labels is not a map';
  if (r.remoteMembers !== undefined && !isPlainMap(r.remoteMembers)) return 'remoteMembers is not a map';
  // Records written before lineage have no derivedFrom: they decode as objects without parents.
  if (r.derivedFrom !== undefined && !isParentList(r.derivedFrom))
    return 'derivedFrom is not a list of { id, name?, version? }';
  if (r.expiresAt !== null && !Number.isFinite(r.expiresAt)) return 'expiresAt is neither a number nor null';
  if (r.blob !== undefined && !isBlobRecord(r.blob)) return 'blob is not { size, checksum, stored }';
  return r as unknown as PersistedObject;
}

/** Decodes the versions stored under `name`, or a reason string. */
export function decodeName(name: string, bytes: Uint8Array): PersistedName | string {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (error) {
    return `undecodable record (${(error as Error).message})`;
  }
  if (!isPlainMap(value) || !Array.isArray(value.versions) || value.versions.length === 0) {
    return 'the record has no versions';
  }
  const versions = value.versions as unknown[];
  const wellFormed = versions.every(
    (v) => isPlainMap(v) && isCount(v.version) && isObjectId(v.id) && Number.isFinite(v.createdAt),
  );
  if (!wellFormed) return 'a version is not { version, id, createdAt }';
  return isCount(value.last)
    ? { name, versions: versions as NameVersion[], last: value.last }
    : { name, versions: versions as NameVersion[] };
}

/** Whether the object's ttl has passed at `now`. */
export function isExpired(record: PersistedObject, now: number): boolean {
  return record.expiresAt !== null && record.expiresAt <= now;
}

function isBlobRecord(value: unknown): value is BlobRecord {
  return (
    isPlainMap(value) &&
    isCount(value.size) &&
    typeof value.checksum === 'string' &&
    (value.stored === 'inline' || value.stored === 'file')
  );
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
