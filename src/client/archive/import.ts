/**
 * importArchive: checks the manifest (shape, topHash), then writes every blob into a new
 * unsealed blob of this client, invisible to everyone else, checking its sha256 as it is read;
 * only when all of them match does one request seal them and create the tree (daemon/
 * archive-import.ts). On any failure the unsealed blobs are aborted: nothing is left behind.
 */
import { TrellisError } from '../../errors';
import type { ArchiveNode, ArchiveRef } from '../../protocol/messages';
import type { BlobWriter } from '../blobs';
import type { ArchiveClient, ImportArchiveOptions } from './archive-client';
import { openArchive, type ArchiveSource } from './archive-source';
import { Progress } from './blob-io';
import { decodeField } from './field-json';
import { BLOBS_DIR, isBlobRef, parseManifest, type Manifest, type ManifestBlob, type ManifestNode } from './manifest';

/** createBlobs takes at most this many sizes a request (the daemon's limit is higher). */
const BLOBS_PER_REQUEST = 10_000;

/** Errors: IOError, ParseError, HashMismatch, OutOfMemory, NameExists, InvalidArgument. */
export async function importArchive(
  client: ArchiveClient,
  archivePath: string,
  options: ImportArchiveOptions = {},
): Promise<{ id: string; topHash: string; existed: boolean }> {
  const source = await openArchive(archivePath);
  try {
    const manifest = parseManifest(await source.readManifest(), source.manifestName);
    checkBlobFiles(source, manifest.blobs);
    const topHash = manifest.header.topHash;
    const { id: existing } = await client.request('findArchive', { topHash });
    if (existing !== null) {
      if (options.name !== undefined) await client.putName(existing, options.name, { override: options.override });
      new Progress(0, options.onProgress).finish();
      return { id: existing, topHash, existed: true };
    }
    return await storeVerified(client, source, manifest, options);
  } finally {
    await source.close();
  }
}

/** Every blob line has its file, of its size; no file is left over. Errors: HashMismatch. */
function checkBlobFiles(source: ArchiveSource, blobs: ManifestBlob[]): void {
  const wanted = new Set<string>();
  for (const blob of blobs) {
    const size = source.blobFiles.get(blob.sha256);
    if (size === undefined)
      throw new TrellisError(
        'HashMismatch',
        `blob ${JSON.stringify(blob.key)} is missing: no ${BLOBS_DIR}/${blob.sha256}`,
      );
    if (size !== blob.size) {
      throw new TrellisError(
        'HashMismatch',
        `blob ${JSON.stringify(blob.key)}: ${BLOBS_DIR}/${blob.sha256} holds ${size} bytes, the manifest says ${blob.size}`,
      );
    }
    wanted.add(blob.sha256);
  }
  for (const name of source.blobFiles.keys()) {
    if (!wanted.has(name))
      throw new TrellisError('HashMismatch', `extra blob ${BLOBS_DIR}/${name}: the manifest lists no such blob`);
  }
}

async function storeVerified(
  client: ArchiveClient,
  source: ArchiveSource,
  manifest: Manifest,
  options: ImportArchiveOptions,
): Promise<{ id: string; topHash: string; existed: boolean }> {
  const blobByKey = new Map(manifest.blobs.map((blob) => [blob.key, blob]));
  // One new blob per distinct (bytes, typename): equal bytes in the archive are stored once.
  const leaves = new Map<string, { sha256: string; size: number; typename: string; keys: string[] }>();
  collectLeaves(manifest.header.root, blobByKey, leaves);
  const writers = new Map<string, BlobWriter>();
  let sealed = false;
  try {
    const byTypename = new Map<string, string[]>();
    for (const [leafId, leaf] of leaves)
      byTypename.set(leaf.typename, [...(byTypename.get(leaf.typename) ?? []), leafId]);
    for (const [typename, leafIds] of byTypename) {
      for (let i = 0; i < leafIds.length; i += BLOBS_PER_REQUEST) {
        const batch = leafIds.slice(i, i + BLOBS_PER_REQUEST);
        const created = await client.createBlobs(
          batch.map((leafId) => leaves.get(leafId)!.size),
          { typename },
        );
        batch.forEach((leafId, j) => writers.set(leafId, created[j]));
      }
    }
    // Fields are decoded before any byte is read, so a bad manifest fails fast.
    const nodes: ArchiveNode[] = [];
    const root = requestTree(manifest.header.root, blobByKey, writers, nodes, source.manifestName);
    const progress = new Progress(
      [...leaves.values()].reduce((sum, leaf) => sum + leaf.size, 0),
      options.onProgress,
    );
    for (const [leafId, leaf] of leaves) {
      const actual = await source.readBlob(leaf.sha256, writers.get(leafId)!.buffer, progress.add);
      if (actual !== leaf.sha256) {
        throw new TrellisError(
          'HashMismatch',
          `blob ${JSON.stringify(leaf.keys[0])}: ${BLOBS_DIR}/${leaf.sha256} has sha256 ${actual}`,
        );
      }
    }
    const seal = [...writers.values()].map((writer) => writer.id);
    const reply = await client.request('importArchive', {
      topHash: manifest.header.topHash,
      root,
      nodes,
      seal,
      ...(manifest.header.parents.length > 0 ? { parents: manifest.header.parents } : {}),
      ...(isBlobRef(manifest.header.root) && manifest.header.root.labels
        ? { rootLabels: manifest.header.root.labels }
        : {}),
      ...(options.name !== undefined ? { name: options.name, override: options.override ?? false } : {}),
    });
    sealed = true;
    for (const writer of writers.values()) writer.sealedElsewhere();
    progress.finish();
    return { id: reply.id, topHash: manifest.header.topHash, existed: reply.existed };
  } finally {
    if (!sealed) await Promise.all([...writers.values()].map((writer) => writer.abort().catch(() => undefined)));
  }
}

function leafIdOf(blob: ManifestBlob, typename: string): string {
  return `${blob.sha256}:${typename}`;
}

function collectLeaves(
  node: ManifestNode,
  blobs: ReadonlyMap<string, ManifestBlob>,
  leaves: Map<string, { sha256: string; size: number; typename: string; keys: string[] }>,
): void {
  if (!isBlobRef(node)) {
    for (const member of Object.values(node.members)) collectLeaves(member, blobs, leaves);
    return;
  }
  const blob = blobs.get(node.blob)!;
  const leafId = leafIdOf(blob, node.typename);
  const leaf = leaves.get(leafId);
  if (leaf) leaf.keys.push(node.blob);
  else leaves.set(leafId, { sha256: blob.sha256, size: blob.size, typename: node.typename, keys: [node.blob] });
}

/** The tree as importArchive takes it: metadata objects in post-order, the root last. */
function requestTree(
  node: ManifestNode,
  blobs: ReadonlyMap<string, ManifestBlob>,
  writers: ReadonlyMap<string, BlobWriter>,
  nodes: ArchiveNode[],
  where: string,
): ArchiveRef {
  if (isBlobRef(node)) return { blob: writers.get(leafIdOf(blobs.get(node.blob)!, node.typename))!.id };
  const members: Record<string, ArchiveRef> = {};
  for (const [key, member] of Object.entries(node.members))
    members[key] = requestTree(member, blobs, writers, nodes, where);
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(node.fields))
    fields[name] = decodeField(value, `${where} line 1: field ${name}`);
  nodes.push({ typename: node.typename, fields, labels: node.labels, members });
  return { node: nodes.length - 1 };
}
