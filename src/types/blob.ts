/** trellis::Blob: Buffer, Uint8Array and ArrayBuffer values; gets are read-only views. */
import type { Client } from '../client/client';
import type { ObjectHandle } from '../client/object-handle';
import { publishOptions, type PutOptions } from './registry';

export const BLOB_TYPENAME = 'trellis::Blob';

export function isBytes(value: unknown): value is Uint8Array | ArrayBuffer {
  return (
    value instanceof ArrayBuffer ||
    (value instanceof Uint8Array && (value.constructor === Uint8Array || Buffer.isBuffer(value)))
  );
}

export async function buildBlob(client: Client, value: Uint8Array | ArrayBuffer, options: PutOptions): Promise<string> {
  const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : value;
  const [writer] = await client.createBlobs([bytes.byteLength]);
  writer.buffer.set(bytes);
  return client.sealBlob(writer, { ...publishOptions(options), labels: options.labels });
}

export function resolveBlob(object: ObjectHandle): Buffer {
  return object.buffer;
}
