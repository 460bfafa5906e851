/**
 * Shape checks for records the daemon reads back from where it kept them (etcd, the data dir),
 * shared by cluster/records.ts and durable/records.ts: data read back is untrusted.
 */
import { isObjectId } from '../protocol/ids';
import type { ParentRef } from '../protocol/messages';

/** A map (not null, not an array, not bytes). */
export function isPlainMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** A list of { id, name?, version? }: lineage parents, as records keep them. */
export function isParentList(value: unknown): value is ParentRef[] {
  return (
    Array.isArray(value) &&
    value.every(
      (parent) =>
        isPlainMap(parent) &&
        isObjectId(parent.id) &&
        (parent.name === undefined || typeof parent.name === 'string') &&
        (parent.version === undefined || Number.isSafeInteger(parent.version)),
    )
  );
}
