/**
 * The data dir (`--data-dir DIR`): what lives where in it, the lock that keeps it to one daemon,
 * and making new directory entries durable.
 *
 *   DIR/lock       flock'd by the daemon that owns DIR while it runs; holds its pid (for messages)
 *   DIR/catalog/   the lmdb environment (data.mdb, lock.mdb): records, names, inline blobs
 *   DIR/blobs/     one file per persisted blob too big to go inline, named by its object id;
 *                  `<id>.<pid>-<n>.tmp` while it is being written
 *   DIR/spill/     spilling's, not durability's (a restarted daemon deletes it); untouched here
 *
 * The lock is flock(2) on DIR/lock, not an O_EXCL pid file: the kernel releases it when the
 * holder dies however it dies, so there is no stale lock to detect, no reused pid to mistake
 * for a live daemon, and no race between two starting daemons that both find an old pid file
 * stale. lmdb allows several processes on one environment, so it would not refuse a second
 * daemon by itself; and the second daemon's sweep of unreferenced blob files would delete the
 * first one's blobs in the middle of being persisted.
 */
import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { TrellisError } from '../../errors';
import { native } from '../../native';

export const LOCK_FILE = 'lock';
export const CATALOG_DIR = 'catalog';
export const BLOBS_DIR = 'blobs';

/** New directories (and the data dir itself) are private to the daemon's user, like its socket. */
const DIRECTORY_MODE = 0o700;
const LOCK_MODE = 0o600;

export class DataDir {
  private constructor(
    /** The data dir, absolute. */
    readonly root: string,
    private lockHandle: FileHandle | undefined,
  ) {}

  get catalogPath(): string {
    return path.join(this.root, CATALOG_DIR);
  }
  get blobsPath(): string {
    return path.join(this.root, BLOBS_DIR);
  }

  /**
   * Creates DIR (and its parents) if missing, takes its lock, and creates catalog/ and blobs/.
   * Errors: Conflict (another daemon holds DIR), IOError (DIR cannot be created or written).
   * Conflict rather than IOError because nothing failed: DIR is fine and claimed by a live
   * daemon, as a socket path another trellisd serves is (also Conflict); IOError would send an
   * operator looking for a disk problem.
   */
  static async open(dir: string): Promise<DataDir> {
    const root = path.resolve(dir);
    await makeDirectory(root);
    const lockHandle = await lock(root);
    try {
      await makeDirectory(path.join(root, CATALOG_DIR));
      await makeDirectory(path.join(root, BLOBS_DIR));
    } catch (error) {
      await lockHandle.close();
      throw error;
    }
    return new DataDir(root, lockHandle);
  }

  /** Releases the lock; another daemon may take DIR from here on. */
  async close(): Promise<void> {
    const handle = this.lockHandle;
    this.lockHandle = undefined;
    await handle?.close();
  }
}

/** Takes DIR's lock (never waits). Errors: Conflict, IOError. */
async function lock(root: string): Promise<FileHandle> {
  const file = path.join(root, LOCK_FILE);
  let handle: FileHandle;
  try {
    handle = await fsp.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, LOCK_MODE);
  } catch (error) {
    throw ioError('cannot open the lock file', file, error);
  }
  try {
    if (!native.lockFile(handle.fd)) {
      const holder = (await handle.readFile('utf8')).trim();
      const pid = /^\d+$/.test(holder) ? `pid ${holder}` : 'pid unknown';
      const message = `data dir ${root} is in use by another trellis daemon (${pid}); one daemon per data dir`;
      throw new TrellisError('Conflict', message);
    }
    // The pid is only for the message above: the lock itself is the flock, whatever the file says.
    await handle.truncate(0);
    await handle.write(`${process.pid}\n`, 0);
    return handle;
  } catch (error) {
    await handle.close();
    throw error instanceof TrellisError ? error : ioError('cannot lock', file, error);
  }
}

/**
 * mkdir -p, then fsync the parent of every directory it created, so that the new entries
 * survive a power loss before anything inside them is made durable. Errors: IOError.
 */
export async function makeDirectory(dir: string): Promise<void> {
  let first: string | undefined;
  try {
    first = await fsp.mkdir(dir, { recursive: true, mode: DIRECTORY_MODE });
  } catch (error) {
    throw ioError('cannot create directory', dir, error);
  }
  if (first === undefined) return;
  for (let created = dir; ; created = path.dirname(created)) {
    await syncDirectory(path.dirname(created));
    if (created === first) break;
  }
}

/**
 * fsync of a directory: makes the entries created, renamed or removed in it durable (a file's
 * own fsync does not cover its name). Errors: IOError.
 */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await fsp.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    await handle.sync();
  } catch (error) {
    throw ioError('cannot sync directory', dir, error);
  } finally {
    await handle?.close();
  }
}

/**
 * The one place a file-system error becomes a TrellisError: IOError, `what` then the path, the
 * system error's message, and the system error as `cause`.
 */
export function ioError(what: string, file: string, cause: unknown): TrellisError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new TrellisError('IOError', `${what} ${file}: ${reason}`, { cause });
}
