/**
 * Any file as a trellis::Blob, read from disk straight into shared memory: the blob is created
 * at the file's size and the file is read into its buffer chunk by chunk, so the bytes never
 * pass through a Buffer of their own.
 */
import * as fs from 'node:fs';
import type { TrellisClient } from '../../connect';
import { TrellisError } from '../../errors';
import { progressBar } from '../progress-bar';

const READ_CHUNK_BYTES = 8 << 20;

/** Errors: IOError (via the caller's fs chokepoint), OutOfMemory, NameExists. */
export async function putBlobFile(
  client: TrellisClient,
  path: string,
  options: { name?: string; override?: boolean; labels?: Record<string, string> },
): Promise<string> {
  const handle = await fs.promises.open(path, 'r');
  try {
    const { size } = await handle.stat();
    const writer = await client.createBlob(size);
    const bar = progressBar(`put ${path}`, size);
    try {
      const target = writer.buffer;
      let offset = 0;
      while (offset < size) {
        const { bytesRead } = await handle.read(target, offset, Math.min(READ_CHUNK_BYTES, size - offset), offset);
        if (bytesRead === 0)
          throw new TrellisError('IOError', `${path} shrank while it was read: ${offset} of ${size} bytes`);
        offset += bytesRead;
        bar.update(offset);
      }
      bar.done();
      return await client.sealBlob(writer, options);
    } catch (error) {
      bar.done();
      if (!writer.sealed) await writer.abort().catch(() => {});
      throw error;
    }
  } finally {
    await handle.close();
  }
}
