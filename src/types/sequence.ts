/**
 * trellis::Sequence: an array whose items are not all plain values (tables, tensors, blobs...).
 * Each item is put as its own object, in parallel; the sequence lists them as members.
 */
import type { Client } from '../client/client';
import type { ObjectHandle } from '../client/object-handle';
import { publishOptions, type PutOptions } from './registry';

export const SEQUENCE_TYPENAME = 'trellis::Sequence';

export async function buildSequence(
  client: Client,
  items: unknown[],
  options: PutOptions,
  putItem: (value: unknown) => Promise<string>,
): Promise<string> {
  const ids = await Promise.all(items.map(putItem));
  const members = Object.fromEntries(ids.map((id, index) => [String(index), id]));
  return client.createMetadata(
    { typename: SEQUENCE_TYPENAME, members, labels: options.labels, length: items.length },
    publishOptions(options),
  );
}

export function resolveSequence(object: ObjectHandle, resolveItem: (item: ObjectHandle) => unknown): Promise<unknown[]> {
  const length = object.fields.length as number;
  return Promise.all(Array.from({ length }, (_, index) => resolveItem(object.member(String(index)))));
}
