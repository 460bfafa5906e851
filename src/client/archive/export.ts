/**
 * exportArchive: walks an object's metadata tree generically (typename, fields, labels, members
 * by logical key, blobs at the leaves), so any type made of blobs and fields exports, a
 * user-registered one too; writes each distinct blob once, named by its sha256, hashing it as
 * it goes straight from shared memory; then the manifest. A directory or a `.tar` file.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { TrellisError } from '../../errors';
import type { ObjectHandle } from '../object-handle';
import type { ArchiveClient, ExportArchiveOptions } from './archive-client';
import { Progress, writeFully, writeHashed } from './blob-io';
import { encodeField, type Json } from './field-json';
import { ioCall } from './archive-source';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_VERSION,
  ARCHIVE_VERSION_ROOT_BLOB_LABELS,
  BLOBS_DIR,
  computeTopHash,
  formatManifest,
  isBlobRef,
  MANIFEST_FILE,
  memberPointer,
  type ManifestBlob,
  type ManifestHeader,
  type ManifestNode,
} from './manifest';
import { BLOCK_BYTES, encodeHeader, paddedSize, writePadding } from './tar-entries';

/** A blob leaf of the tree: its key and its bytes (a view of shared memory). */
interface Leaf {
  key: string;
  id: string;
  view: Uint8Array;
}

/** Errors: ObjectNotFound, NameNotFound, InvalidArgument (a stream, a bad path), IOError. */
export async function exportArchive(
  client: ArchiveClient,
  ref: string,
  archivePath: string,
  options: ExportArchiveOptions = {},
): Promise<{ topHash: string; bytes: number }> {
  const { id } = await client.request('exportArchive', { ref });
  const handle = await client.getObject(id);
  try {
    const leaves: Leaf[] = [];
    const root = describe(client, handle, '', leaves);
    const distinct = new Map<string, Uint8Array>();
    for (const leaf of leaves) distinct.set(leaf.id, leaf.view);
    const progress = new Progress(
      [...distinct.values()].reduce((sum, view) => sum + view.length, 0),
      options.onProgress,
    );
    const writer = archivePath.endsWith('.tar')
      ? await TarWriter.create(archivePath)
      : await DirectoryWriter.create(archivePath);
    try {
      const hashOf = new Map<string, string>();
      for (const [blobId, view] of distinct) hashOf.set(blobId, await writer.addBlob(view, progress.add));
      const blobs: ManifestBlob[] = leaves.map((leaf) => ({
        key: leaf.key,
        size: leaf.view.length,
        sha256: hashOf.get(leaf.id)!,
      }));
      const topHash = computeTopHash(root, new Map(blobs.map((blob) => [blob.key, blob])));
      const manifest = formatManifest({
        header: { format: ARCHIVE_FORMAT, version: versionFor(root), topHash, parents: parentsOf(handle), root },
        blobs,
      });
      const bytes = await writer.finish(Buffer.from(manifest, 'utf8'));
      progress.finish();
      await client.request('recordArchive', { topHash, id });
      return { topHash, bytes };
    } catch (error) {
      await writer.discard();
      throw error;
    }
  } finally {
    await client.release(id);
  }
}

/** The manifest node of `object`, adding its blob leaves (depth first, keys sorted). */
function describe(client: ArchiveClient, object: ObjectHandle, key: string, leaves: Leaf[]): ManifestNode {
  if (object.meta.instanceId !== client.instanceId) {
    throw new TrellisError(
      'InvalidArgument',
      `cannot export ${object.id}: it lives on instance ${object.meta.instanceId}; migrate it here first`,
    );
  }
  if (object.isBlob) {
    leaves.push({ key, id: object.id, view: object.buffer });
    // Only the root blob's labels travel (a member blob is one blob however many keys use it).
    const labelled = key === '' && Object.keys(object.labels).length > 0;
    return labelled
      ? { typename: object.typename, blob: key, labels: { ...object.labels } }
      : { typename: object.typename, blob: key };
  }
  const members: Record<string, ManifestNode> = {};
  for (const memberKey of object.memberKeys().sort()) {
    members[memberKey] = describe(client, object.member(memberKey), memberPointer(key, memberKey), leaves);
  }
  const fields: { [name: string]: Json } = {};
  for (const [name, value] of Object.entries(object.fields)) fields[name] = encodeField(value, `${object.id}.${name}`);
  return { typename: object.typename, fields, labels: { ...object.labels }, members };
}

/** Version 1 unless the root is a blob with labels, which only version 2 carries. */
function versionFor(root: ManifestNode): ManifestHeader['version'] {
  return isBlobRef(root) && root.labels !== undefined ? ARCHIVE_VERSION_ROOT_BLOB_LABELS : ARCHIVE_VERSION;
}

/** Lineage (getMeta(id).parents) as ids; informative, never hashed. */
function parentsOf(object: ObjectHandle): string[] {
  return (object.meta.parents ?? []).map((parent) => parent.id);
}

interface ArchiveWriter {
  /** Writes one blob; returns its sha256. */
  addBlob(view: Uint8Array, progress: (bytes: number) => void): Promise<string>;
  /** Writes the manifest and completes the archive; returns its size in bytes. */
  finish(manifest: Buffer): Promise<number>;
  /** Removes what this export wrote. */
  discard(): Promise<void>;
}

class DirectoryWriter implements ArchiveWriter {
  private readonly written = new Set<string>();
  private bytes = 0;
  private temp = 0;

  private constructor(
    private readonly root: string,
    private readonly createdRoot: boolean,
  ) {}

  /** Errors: InvalidArgument (exists and is not an empty directory), IOError. */
  static async create(root: string): Promise<DirectoryWriter> {
    const existing = await fs.readdir(root).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      if (error.code === 'ENOTDIR')
        throw new TrellisError(
          'InvalidArgument',
          `exportArchive: ${root} exists and is not a directory (a tar path ends in .tar)`,
        );
      throw new TrellisError('IOError', `${root}: ${error.code}: ${error.message}`, { cause: error });
    });
    if (existing && existing.length > 0)
      throw new TrellisError('InvalidArgument', `exportArchive: ${root} exists and is not empty`);
    await ioCall(root, () => fs.mkdir(path.join(root, BLOBS_DIR), { recursive: true }));
    return new DirectoryWriter(root, existing === undefined);
  }

  async addBlob(view: Uint8Array, progress: (bytes: number) => void): Promise<string> {
    const temp = path.join(this.root, BLOBS_DIR, `.partial-${this.temp++}`);
    const file = await ioCall(temp, () => fs.open(temp, 'wx'));
    let sha256: string;
    try {
      sha256 = await ioCall(temp, () => writeHashed(file, view, 0, progress));
    } finally {
      await file.close();
    }
    if (this.written.has(sha256)) {
      await fs.rm(temp);
    } else {
      await ioCall(temp, () => fs.rename(temp, path.join(this.root, BLOBS_DIR, sha256)));
      this.written.add(sha256);
      this.bytes += view.length;
    }
    return sha256;
  }

  async finish(manifest: Buffer): Promise<number> {
    const target = path.join(this.root, MANIFEST_FILE);
    await ioCall(target, () => fs.writeFile(target, manifest, { flag: 'wx' }));
    return this.bytes + manifest.length;
  }

  async discard(): Promise<void> {
    if (this.createdRoot) await fs.rm(this.root, { recursive: true, force: true });
    else {
      await fs.rm(path.join(this.root, BLOBS_DIR), { recursive: true, force: true });
      await fs.rm(path.join(this.root, MANIFEST_FILE), { force: true });
    }
  }
}

/**
 * Writes the tar beside its path and renames it into place once complete. A blob's header
 * names its sha256, known only once its bytes are written: the header block is left free,
 * the data written after it, then the header written into it.
 */
class TarWriter implements ArchiveWriter {
  private readonly written = new Set<string>();
  private position = 0;

  private constructor(
    private readonly target: string,
    private readonly temp: string,
    private readonly file: fs.FileHandle,
  ) {}

  /** Errors: InvalidArgument (a file that is not empty is in the way), IOError. */
  static async create(target: string): Promise<TarWriter> {
    const stat = await fs.stat(target).catch(() => undefined);
    if (stat && (!stat.isFile() || stat.size > 0))
      throw new TrellisError('InvalidArgument', `exportArchive: ${target} exists and is not an empty file`);
    const temp = `${target}.partial-${process.pid}-${Date.now()}`;
    const file = await ioCall(temp, () => fs.open(temp, 'wx'));
    const writer = new TarWriter(target, temp, file);
    await ioCall(temp, () => writer.append(encodeHeader(`${BLOBS_DIR}/`, 0, 'Directory')));
    return writer;
  }

  async addBlob(view: Uint8Array, progress: (bytes: number) => void): Promise<string> {
    const headerAt = this.position;
    const sha256 = await ioCall(this.temp, () => writeHashed(this.file, view, headerAt + BLOCK_BYTES, progress));
    // The same bytes twice: the second copy is written over by whatever comes next.
    if (this.written.has(sha256)) return sha256;
    this.written.add(sha256);
    await ioCall(this.temp, async () => {
      await writeFully(this.file, encodeHeader(`${BLOBS_DIR}/${sha256}`, view.length, 'File'), headerAt);
      // The padding goes after the data (writePadding takes where the data ends).
      await writePadding(this.file, view.length, headerAt + BLOCK_BYTES + view.length);
    });
    this.position = headerAt + BLOCK_BYTES + paddedSize(view.length);
    return sha256;
  }

  async finish(manifest: Buffer): Promise<number> {
    await ioCall(this.temp, async () => {
      await this.append(encodeHeader(MANIFEST_FILE, manifest.length, 'File'));
      await this.append(manifest);
      this.position += await writePadding(this.file, manifest.length, this.position);
      await this.append(Buffer.alloc(2 * BLOCK_BYTES));
      await this.file.truncate(this.position);
      await this.file.close();
    });
    await ioCall(this.target, () => fs.rename(this.temp, this.target));
    return this.position;
  }

  async discard(): Promise<void> {
    await this.file.close().catch(() => undefined);
    await fs.rm(this.temp, { force: true });
  }

  private async append(bytes: Uint8Array): Promise<void> {
    await writeFully(this.file, bytes, this.position);
    this.position += bytes.length;
  }
}
