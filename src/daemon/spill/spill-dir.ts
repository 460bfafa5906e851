/**
 * The spill folder (`--spill-dir`): scratch copies of sealed blobs that were moved out of
 * shared memory under pressure, one file per blob, named by its id. Spill files are not
 * durability (nothing is fsync'd; a restarted daemon deletes them): durable bytes live in the
 * data dir. Reads and writes go through libuv's thread pool, straight between the file and the
 * shared-memory view, so neither the event loop nor the JS heap ever holds a blob's bytes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TrellisError } from '../../errors';
import type { BlobBacking } from '../object-table';

const SPILL_SUFFIX = '.spill';
/**
 * Bytes per write or read call. One call over a whole 1 GiB blob took 3.3 s here against 0.13 s
 * in 64 MiB calls (the kernel handles a huge single write badly); 8 to 64 MiB all do as well.
 */
const IO_CHUNK_BYTES = 16 * 1024 * 1024;

export class SpillDir {
  private constructor(readonly dir: string) {}

  /**
   * Creates the folder (private to this user) and deletes what an earlier daemon spilled there:
   * files named like ours, nothing else. Errors: IOError.
   */
  static open(dir: string): SpillDir {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      for (const entry of fs.readdirSync(dir)) {
        if (entry.endsWith(SPILL_SUFFIX) || entry.endsWith(`${SPILL_SUFFIX}.tmp`))
          fs.rmSync(path.join(dir, entry), { force: true });
      }
      fs.accessSync(dir, fs.constants.W_OK);
    } catch (error) {
      throw new TrellisError('IOError', `spill dir ${dir} cannot be used: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return new SpillDir(dir);
  }

  /** Writes a blob's bytes out; returns where they are. Errors: IOError naming the path. */
  async write(id: string, bytes: Uint8Array): Promise<BlobBacking> {
    const file = path.join(this.dir, id + SPILL_SUFFIX);
    try {
      await writeWhole(file, bytes);
    } catch (error) {
      await fs.promises.rm(file, { force: true }).catch(() => undefined);
      throw new TrellisError('IOError', `cannot spill ${id} to ${file}: ${(error as Error).message}`, { cause: error });
    }
    return { path: file, durable: false };
  }

  /** Removes a spill file; a missing one is fine. */
  remove(backing: BlobBacking): void {
    if (backing.durable) return;
    fs.promises.rm(backing.path, { force: true }).catch(() => undefined);
  }
}

/** Writes `bytes` to a new file at `file`, looping over short writes. */
export async function writeWhole(file: string, bytes: Uint8Array): Promise<void> {
  const handle = await fs.promises.open(file, 'w', 0o600);
  try {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, done, Math.min(IO_CHUNK_BYTES, bytes.length - done));
      done += bytesWritten;
    }
  } finally {
    await handle.close();
  }
}

/** Reads exactly `into.length` bytes of `file` into `into`. Errors: IOError (short or unreadable file). */
export async function readWhole(file: string, into: Uint8Array, what: string): Promise<void> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (error) {
    throw new TrellisError('IOError', `cannot load ${what} from ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    const { size } = await handle.stat();
    if (size !== into.length)
      throw new TrellisError('IOError', `cannot load ${what} from ${file}: it holds ${size} bytes, not ${into.length}`);
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await handle.read(into, done, Math.min(IO_CHUNK_BYTES, into.length - done), done);
      if (bytesRead === 0)
        throw new TrellisError('IOError', `cannot load ${what} from ${file}: it ended after ${done} bytes`);
      done += bytesRead;
    }
  } catch (error) {
    if (error instanceof TrellisError) throw error;
    throw new TrellisError('IOError', `cannot load ${what} from ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await handle.close();
  }
}
