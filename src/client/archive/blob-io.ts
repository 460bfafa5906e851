/**
 * Moving blob bytes between shared memory and files while hashing them, a chunk at a time: the
 * file I/O runs on libuv's threads straight from or into the shared-memory view (no copy into
 * the JS heap), and the sha256 of one chunk runs while the I/O of the next is under way, so the
 * event loop is never held for more than one chunk's hashing (a few milliseconds).
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { TrellisError } from '../../errors';

export const CHUNK_BYTES = 4 * 1024 * 1024;

/** Writes `view` at `position` and returns its sha256 (hex). */
export async function writeHashed(
  file: FileHandle,
  view: Uint8Array,
  position: number,
  progress: (bytes: number) => void,
): Promise<string> {
  const hash = createHash('sha256');
  for (let offset = 0; offset < view.length; offset += CHUNK_BYTES) {
    const chunk = view.subarray(offset, Math.min(offset + CHUNK_BYTES, view.length));
    const written = writeFully(file, chunk, position + offset);
    hash.update(chunk);
    await written;
    progress(chunk.length);
  }
  return hash.digest('hex');
}

/** Fills `target` from the file at `position` and returns the sha256 (hex) of what was read. */
export async function readHashed(
  file: FileHandle,
  target: Uint8Array,
  position: number,
  where: string,
  progress: (bytes: number) => void,
): Promise<string> {
  const hash = createHash('sha256');
  const readChunk = (offset: number) =>
    readFully(file, target.subarray(offset, Math.min(offset + CHUNK_BYTES, target.length)), position + offset, where);
  let pending = target.length > 0 ? readChunk(0) : undefined;
  for (let offset = 0; offset < target.length; offset += CHUNK_BYTES) {
    await pending;
    const end = Math.min(offset + CHUNK_BYTES, target.length);
    pending = end < target.length ? readChunk(end) : undefined;
    hash.update(target.subarray(offset, end));
    progress(end - offset);
  }
  return hash.digest('hex');
}

export async function writeFully(file: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** Errors: IOError when the file ends first. */
export async function readFully(file: FileHandle, target: Uint8Array, position: number, where: string): Promise<void> {
  for (let done = 0; done < target.length;) {
    const { bytesRead } = await file.read(target, done, target.length - done, position + done);
    if (bytesRead === 0)
      throw new TrellisError('IOError', `${where}: the file ended ${target.length - done} bytes early`);
    done += bytesRead;
  }
}

/** Calls onProgress as bytes go, and once at the end. */
export class Progress {
  private done = 0;

  constructor(
    private readonly total: number,
    private readonly onProgress?: (progress: { bytesDone: number; bytesTotal: number }) => void,
  ) {}

  readonly add = (bytes: number): void => {
    this.done += bytes;
    this.onProgress?.({ bytesDone: this.done, bytesTotal: this.total });
  };

  finish(): void {
    this.onProgress?.({ bytesDone: this.total, bytesTotal: this.total });
  }
}
