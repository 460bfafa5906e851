/**
 * trellis::Sequence: an array whose items are not all plain values (tables, tensors, blobs...).
 * Each item is put as its own object, in parallel; the sequence lists them as members.
 */
import type { Client } from '../client/client';
import type { ObjectHandle } from '../client/object-handle';
import { malformed } from './malformed';
import { publishOptions, type PutOptions } from './registry';

export const SEQUENCE_TYPENAME = 'trellis::Sequence';

/**
 * An item's put, a rejection when it throws (no builder, a value that cannot be encoded): a throw
 * out of the items' map would leave the puts of the items before it rejecting unheard.
 */
function putRejecting(putItem: (value: unknown) => Promise<string>, item: unknown): Promise<string> {
  try {
    return putItem(item);
  } catch (error) {
    return Promise.reject(error as Error);
  }
}

export async function buildSequence(
  client: Client,
  items: unknown[],
  options: PutOptions,
  putItem: (value: unknown) => Promise<string>,
): Promise<string> {
  const ids = await Promise.all(items.map((item) => putRejecting(putItem, item)));
  const members = Object.fromEntries(ids.map((id, index) => [String(index), id]));
  return client.createMetadata(
    { typename: SEQUENCE_TYPENAME, members, labels: options.labels, length: items.length },
    publishOptions(options),
  );
}

/**
 * The items, resolved in order. `length` must count members "0" to "length - 1" that all exist:
 * it is checked against the members before anything is made, so a lying length costs nothing.
 * Errors: TypeMismatch naming the object; whatever resolving an item throws.
 */
export function resolveSequence(
  object: ObjectHandle,
  resolveItem: (item: ObjectHandle) => unknown,
): Promise<unknown[]> {
  const length = object.fields.length;
  if (!Number.isSafeInteger(length) || (length as number) < 0)
    throw malformed(object, `length ${String(length)} is not a count`);
  const items: ObjectHandle[] = [];
  for (let index = 0; index < (length as number); index++) {
    if (!object.hasMember(String(index)))
      throw malformed(object, `length ${length} but no member ${JSON.stringify(String(index))}`);
    items.push(object.member(String(index)));
  }
  return Promise.all(items.map(resolveItem));
}
