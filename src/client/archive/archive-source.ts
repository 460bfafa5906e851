/**
 * An archive to import, as a directory or as a tar file: its manifest, the files under blobs/
 * and their sizes, and reading one file into a blob's writable bytes while hashing it.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { TrellisError } from '../../errors';
import { readFully, readHashed } from './blob-io';
import { BLOBS_DIR, MANIFEST_FILE, MAX_MANIFEST_BYTES } from './manifest';
import { scanTar, type TarEntry } from './tar-entries';

export interface ArchiveSource {
  /** The manifest's name in messages. */
  readonly manifestName: string;
  /** Files under blobs/: name -> size. */
  readonly blobFiles: ReadonlyMap<string, number>;
  readManifest(): Promise<string>;
  /** Reads blobs/<name> into `target` (exactly its size); returns its sha256. */
  readBlob(name: string, target: Uint8Array, progress: (bytes: number) => void): Promise<string>;
  close(): Promise<void>;
}

/** Errors: IOError (unreadable path), ParseError (an entry that does not belong, a bad tar). */
export async function openArchive(archivePath: string): Promise<ArchiveSource> {
  const stat = await ioCall(archivePath, () => fs.stat(archivePath));
  return stat.isDirectory() ? DirectorySource.open(archivePath) : TarSource.open(archivePath, stat.size);
}

/** Runs an fs call, turning its error into IOError naming the path (the one chokepoint here). */
export async function ioCall<T>(target: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof TrellisError) throw error;
    throw new TrellisError('IOError', `${target}: ${(error as Error).message}`, { cause: error });
  }
}

function tooBig(name: string, size: number): never {
  throw new TrellisError(
    'ParseError',
    `${name}: the manifest is ${size} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`,
  );
}

function unexpected(where: string, entry: string): never {
  throw new TrellisError(
    'ParseError',
    `${where}: ${JSON.stringify(entry)} does not belong in an archive (only ${MANIFEST_FILE} and ${BLOBS_DIR}/)`,
  );
}

class DirectorySource implements ArchiveSource {
  private constructor(
    private readonly root: string,
    readonly blobFiles: ReadonlyMap<string, number>,
  ) {}

  get manifestName(): string {
    return path.join(this.root, MANIFEST_FILE);
  }

  static async open(root: string): Promise<DirectorySource> {
    for (const entry of await ioCall(root, () => fs.readdir(root, { withFileTypes: true }))) {
      if (entry.name === MANIFEST_FILE && entry.isFile()) continue;
      if (entry.name === BLOBS_DIR && entry.isDirectory()) continue;
      unexpected(root, entry.name);
    }
    const blobsDir = path.join(root, BLOBS_DIR);
    const blobFiles = new Map<string, number>();
    const entries = await ioCall(blobsDir, () => fs.readdir(blobsDir, { withFileTypes: true })).catch((error) => {
      if ((error as TrellisError).cause && ((error as TrellisError).cause as NodeJS.ErrnoException).code === 'ENOENT')
        return [];
      throw error;
    });
    for (const entry of entries) {
      const file = path.join(blobsDir, entry.name);
      if (!entry.isFile())
        throw new TrellisError('ParseError', `${file}: only plain files are accepted under ${BLOBS_DIR}/ (no links)`);
      blobFiles.set(entry.name, (await ioCall(file, () => fs.stat(file))).size);
    }
    return new DirectorySource(root, blobFiles);
  }

  async readManifest(): Promise<string> {
    const name = this.manifestName;
    const { size } = await ioCall(name, () => fs.stat(name));
    if (size > MAX_MANIFEST_BYTES) tooBig(name, size);
    return ioCall(name, () => fs.readFile(name, 'utf8'));
  }

  async readBlob(name: string, target: Uint8Array, progress: (bytes: number) => void): Promise<string> {
    const file = path.join(this.root, BLOBS_DIR, name);
    const handle = await ioCall(file, () => fs.open(file, 'r'));
    try {
      return await ioCall(file, () => readHashed(handle, target, 0, file, progress));
    } finally {
      await handle.close();
    }
  }

  async close(): Promise<void> {}
}

class TarSource implements ArchiveSource {
  private constructor(
    private readonly tarPath: string,
    private readonly file: fs.FileHandle,
    private readonly manifest: TarEntry | undefined,
    private readonly blobs: Map<string, TarEntry>,
    readonly blobFiles: ReadonlyMap<string, number>,
  ) {}

  get manifestName(): string {
    return `${this.tarPath}:${MANIFEST_FILE}`;
  }

  static async open(tarPath: string, size: number): Promise<TarSource> {
    const file = await ioCall(tarPath, () => fs.open(tarPath, 'r'));
    try {
      const entries = await ioCall(tarPath, () => scanTar(file, size, tarPath));
      const blobs = new Map<string, TarEntry>();
      let manifest: TarEntry | undefined;
      for (const [entryPath, entry] of entries) {
        if (entryPath === MANIFEST_FILE) manifest = entry;
        else if (entryPath.startsWith(`${BLOBS_DIR}/`) && !entryPath.slice(BLOBS_DIR.length + 1).includes('/'))
          blobs.set(entryPath.slice(BLOBS_DIR.length + 1), entry);
        else unexpected(tarPath, entryPath);
      }
      const blobFiles = new Map([...blobs].map(([name, entry]) => [name, entry.size]));
      return new TarSource(tarPath, file, manifest, blobs, blobFiles);
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  async readManifest(): Promise<string> {
    if (!this.manifest) throw new TrellisError('IOError', `${this.tarPath}: the tar has no ${MANIFEST_FILE}`);
    if (this.manifest.size > MAX_MANIFEST_BYTES) tooBig(this.manifestName, this.manifest.size);
    const bytes = Buffer.alloc(this.manifest.size);
    await ioCall(this.tarPath, () => readFully(this.file, bytes, this.manifest!.position, this.tarPath));
    return bytes.toString('utf8');
  }

  readBlob(name: string, target: Uint8Array, progress: (bytes: number) => void): Promise<string> {
    const entry = this.blobs.get(name)!;
    return ioCall(this.tarPath, () => readHashed(this.file, target, entry.position, this.tarPath, progress));
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
