/**
 * Persisted blobs too big to go inline: one file per blob in DIR/blobs, named by object id.
 *
 * A blob is written to a temp file, fsync'd, renamed to its id, and the directory fsync'd, in
 * that order, before `write` resolves; only then may the catalog refer to it (the store commits
 * the record after). A crash at any point leaves a temp file or an unreferenced file, which the
 * sweep at open removes; never a referenced file with missing bytes.
 *
 * Bytes never pass through the JS heap: writes go straight from the caller's view (a view of
 * shared memory) and reads straight into the caller's buffer, in CHUNK_BYTES steps run by
 * libuv's threadpool, and the checksum of each chunk is computed on another pool thread at the
 * same time (checksum.ts). The event loop only hands out the steps: it never waits on the disk
 * and never hashes.
 */
import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { TrellisError } from '../../errors';
import { isObjectId } from '../../protocol/ids';
import { CHUNK_BYTES, RunningChecksum } from './checksum';
import { ioError, syncDirectory } from './data-dir';

export const TEMP_SUFFIX = '.tmp';
const FILE_MODE = 0o600;
/**
 * Blob files written at once by one `write`: several help when blobs are small (one chunk, and
 * the fsync is most of the time). Each file keeps up to three pool threads busy (WRITES_IN_FLIGHT
 * writing, one hashing), so a persist can fill libuv's default pool of four and other file I/O
 * queues behind it meanwhile; the daemon may raise UV_THREADPOOL_SIZE. A read takes three.
 */
const PARALLEL_FILES = 2;

export interface BlobToWrite {
  id: string;
  bytes: Uint8Array;
}

export interface SweepResult {
  /** Temp files and files no record refers to, now deleted. */
  removed: string[];
  /** Ids whose record names a blob file that is not there. */
  missing: string[];
}

export class BlobFiles {
  private tempCounter = 0;

  constructor(readonly dir: string) {}

  /** The file of blob `id`. Errors: InvalidArgument (not an object id). */
  pathOf(id: string): string {
    if (!isObjectId(id)) throw new TrellisError('InvalidArgument', `not an object id: ${JSON.stringify(id)}`);
    return path.join(this.dir, id);
  }

  /**
   * Writes every blob to its file and makes all of them durable (files and directory entries);
   * resolves to each id's checksum. All or nothing: on a failure, the files this call wrote are
   * removed and the first error is thrown. Errors: IOError naming the file, InvalidArgument.
   */
  async write(blobs: readonly BlobToWrite[]): Promise<Map<string, string>> {
    const checksums = new Map<string, string>();
    const written: string[] = [];
    let failure: unknown;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < blobs.length) {
        const { id, bytes } = blobs[next++];
        try {
          const file = this.pathOf(id);
          checksums.set(id, await this.writeFile(id, file, bytes));
          written.push(file);
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_FILES, blobs.length) }, worker));
    if (failure === undefined && written.length > 0) {
      try {
        await syncDirectory(this.dir);
      } catch (error) {
        failure = error;
      }
    }
    if (failure !== undefined) {
      await Promise.all(written.map((file) => fsp.rm(file, { force: true }).catch(() => undefined)));
      throw failure;
    }
    return checksums;
  }

  /**
   * Reads blob `id` into `into` (exactly its size) and checks it against its record.
   * Errors: IOError naming the id and the file (missing, wrong size, checksum differs, read error).
   */
  async read(id: string, into: Uint8Array, expected: { size: number; checksum: string }): Promise<void> {
    const file = this.pathOf(id);
    if (into.length !== expected.size) {
      throw new TrellisError(
        'InvalidArgument',
        `blob ${id} is ${expected.size} bytes; got a ${into.length}-byte buffer to read it into`,
      );
    }
    let handle: FileHandle | undefined;
    try {
      handle = await fsp.open(file, 'r');
      const { size } = await handle.stat();
      if (size !== expected.size) {
        throw new TrellisError(
          'IOError',
          `blob of object ${id} is damaged: ${file} has ${size} bytes, its record says ${expected.size}`,
        );
      }
      const actual = await readChecked(handle, into);
      if (actual !== expected.checksum) {
        throw new TrellisError(
          'IOError',
          `blob of object ${id} is damaged: ${file} has checksum ${actual}, its record says ${expected.checksum}`,
        );
      }
    } catch (error) {
      if (error instanceof TrellisError) throw error;
      throw ioError(`cannot read the blob of object ${id} from`, file, error);
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  /** Deletes the files of `ids`; a file already gone is fine. Errors: IOError. */
  async remove(ids: Iterable<string>): Promise<void> {
    for (const id of ids) {
      const file = this.pathOf(id);
      try {
        await fsp.rm(file, { force: true });
      } catch (error) {
        throw ioError(`cannot delete the blob of object ${id}:`, file, error);
      }
    }
    // No fsync of the directory: an unlink lost in a crash leaves an unreferenced file, which the
    // sweep at the next open deletes.
  }

  /**
   * At open, before anything is written: deletes temp files (a crash in the middle of a write)
   * and files that no record refers to (a crash after the rename, before the commit; or after a
   * delete's commit, before the unlink), and lists referenced files that are missing. Names that
   * are neither ids nor temp files are not trellis's and are left alone. Errors: IOError.
   */
  async sweep(referenced: ReadonlySet<string>): Promise<SweepResult> {
    let entries: string[];
    try {
      entries = await fsp.readdir(this.dir);
    } catch (error) {
      throw ioError('cannot list', this.dir, error);
    }
    const removed: string[] = [];
    const present = new Set<string>();
    for (const name of entries) {
      const unreferenced = name.endsWith(TEMP_SUFFIX) || (isObjectId(name) && !referenced.has(name));
      if (isObjectId(name) && !unreferenced) present.add(name);
      if (!unreferenced) continue;
      const file = path.join(this.dir, name);
      try {
        await fsp.rm(file, { force: true });
      } catch (error) {
        throw ioError('cannot delete the leftover file', file, error);
      }
      removed.push(file);
    }
    return { removed, missing: [...referenced].filter((id) => !present.has(id)) };
  }

  /** Temp file, write with the checksum alongside, fsync, rename. Errors: IOError naming `file`. */
  private async writeFile(id: string, file: string, bytes: Uint8Array): Promise<string> {
    const temp = `${file}.${process.pid}-${this.tempCounter++}${TEMP_SUFFIX}`;
    let handle: FileHandle | undefined;
    try {
      handle = await fsp.open(temp, 'wx', FILE_MODE);
      const checksum = await writeChecked(handle, bytes);
      await handle.sync();
      await handle.close();
      handle = undefined;
      await fsp.rename(temp, file);
      return checksum;
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await fsp.rm(temp, { force: true }).catch(() => undefined);
      throw ioError(`cannot persist the blob of object ${id} to`, file, error);
    }
  }
}

/** Chunk writes kept in flight, so the writing threads never wait on the event loop. */
const WRITES_IN_FLIGHT = 2;

/**
 * Writes `bytes` at offset 0 in CHUNK_BYTES steps and returns their checksum: one pool thread
 * hashes each chunk while others write it and the one before.
 */
async function writeChecked(handle: FileHandle, bytes: Uint8Array): Promise<string> {
  const checksum = new RunningChecksum();
  const writes: Array<Promise<void>> = [];
  try {
    for (let offset = 0; offset < bytes.length; offset += CHUNK_BYTES) {
      const chunk = bytes.subarray(offset, Math.min(offset + CHUNK_BYTES, bytes.length));
      writes.push(handledLater(writeFully(handle, chunk, offset)));
      await checksum.update(chunk);
      if (writes.length === WRITES_IN_FLIGHT) await writes.shift();
    }
    while (writes.length > 0) await writes.shift();
  } catch (error) {
    // The caller closes the handle next: no write may still be running then.
    await Promise.allSettled(writes);
    throw error;
  }
  return checksum.digest();
}

/** Chunks read ahead of the one being hashed, so the reading threads never wait on the event loop. */
const READS_AHEAD = 2;

/**
 * Reads the file into `into` in CHUNK_BYTES steps and returns their checksum: one pool thread
 * hashes each chunk once it has arrived while others read the next READS_AHEAD chunks.
 */
async function readChecked(handle: FileHandle, into: Uint8Array): Promise<string> {
  const checksum = new RunningChecksum();
  const reads: Array<{ chunk: Uint8Array; done: Promise<void> }> = [];
  let next = 0;
  const readAhead = () => {
    for (; reads.length < READS_AHEAD && next < into.length; next += CHUNK_BYTES) {
      const chunk = into.subarray(next, Math.min(next + CHUNK_BYTES, into.length));
      reads.push({ chunk, done: handledLater(readFully(handle, chunk, next)) });
    }
  };
  try {
    readAhead();
    while (reads.length > 0) {
      const { chunk, done } = reads[0];
      await done;
      reads.shift();
      readAhead();
      await checksum.update(chunk);
    }
  } catch (error) {
    // As in writeChecked: no read may still be running when the caller closes the handle.
    await Promise.allSettled(reads.map((read) => read.done));
    throw error;
  }
  return checksum.digest();
}

/**
 * Returns `promise` with its rejection marked as handled: a write or read that fails while an
 * earlier chunk is awaited is thrown when its turn comes, not reported as an unhandled rejection.
 */
function handledLater<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

async function writeFully(handle: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < chunk.length;) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

async function readFully(handle: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < chunk.length;) {
    const { bytesRead } = await handle.read(chunk, done, chunk.length - done, position + done);
    if (bytesRead === 0) throw new Error(`the file ended at byte ${position + done}, before the blob did`);
    done += bytesRead;
  }
}
