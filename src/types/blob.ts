/** trellis::Blob: Buffer, Uint8Array and ArrayBuffer values; gets are read-only views. */
import type { Client, SealOptions } from '../client/client';
import { MAX_INLINE_BLOB_BYTES } from '../protocol/messages';
import type { ObjectHandle } from '../client/object-handle';
import { publishOptions, type PutOptions } from './registry';

export const BLOB_TYPENAME = 'trellis::Blob';

export function isBytes(value: unknown): value is Uint8Array | ArrayBuffer {
  return (
    value instanceof ArrayBuffer ||
    (value instanceof Uint8Array && (value.constructor === Uint8Array || Buffer.isBuffer(value)))
  );
}

/**
 * A small blob's bytes go in the put request itself (one round trip, no mapping in this process);
 * the daemon copies them into shared memory, so a get anywhere is still a view of shared memory.
 */
export function inlineBlobEntry(value: unknown, options: PutOptions): ({ data: Uint8Array } & SealOptions) | undefined {
  if (!isBytes(value)) return undefined;
  const data = value instanceof ArrayBuffer ? new Uint8Array(value) : value;
  if (data.byteLength > MAX_INLINE_BLOB_BYTES) return undefined;
  const entry: { data: Uint8Array } & SealOptions = { data, ...publishOptions(options) };
  if (options.labels !== undefined) entry.labels = options.labels;
  return entry;
}

export function buildBlob(client: Client, value: Uint8Array | ArrayBuffer, options: PutOptions): Promise<string> {
  const inline = inlineBlobEntry(value, options);
  // The promise of the request itself, not one more around it: this is every small Buffer's put.
  if (inline) return client.putBlobs([inline]).then(firstId);
  return buildSealedBlob(client, value, options);
}

function firstId(ids: string[]): string {
  return ids[0];
}

async function buildSealedBlob(client: Client, value: Uint8Array | ArrayBuffer, options: PutOptions): Promise<string> {
  const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : value;
  const [writer] = await client.createBlobs([bytes.byteLength]);
  writer.buffer.set(bytes);
  return client.sealBlob(writer, { ...publishOptions(options), labels: options.labels });
}

export function resolveBlob(object: ObjectHandle): Buffer {
  return object.buffer;
}
