/**
 * The archive manifest (docs/archive-format.md): `manifest.jsonl`, whose first line describes
 * the object tree and whose further lines list its blobs, and the topHash over the tree's
 * canonical form. Building, parsing and checking it live here; files and bytes do not.
 */
import { createHash } from 'node:crypto';
import { TrellisError } from '../../errors';
import { canonicalJson, type Json } from './field-json';

export const ARCHIVE_FORMAT = 'trellis-archive';
/**
 * The version an exporter writes: 2 only when the root is a blob with labels (which version 1
 * has no place for), else 1, so that such archives stay readable by a trellis that reads 1.
 */
export const ARCHIVE_VERSION = 1;
export const ARCHIVE_VERSION_ROOT_BLOB_LABELS = 2;
const READABLE_VERSIONS: readonly number[] = [ARCHIVE_VERSION, ARCHIVE_VERSION_ROOT_BLOB_LABELS];
export const MANIFEST_FILE = 'manifest.jsonl';
export const BLOBS_DIR = 'blobs';
/** A manifest past this is refused before it is read (it lists a tree, not bytes). */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Member nesting past this is refused, so a crafted manifest cannot exhaust the stack. */
const MAX_DEPTH = 256;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A metadata object: fields as encoded JSON (field-json.ts), members by their logical keys. */
export interface ManifestObject {
  typename: string;
  fields: { [key: string]: Json };
  labels: Record<string, string>;
  members: Record<string, ManifestNode>;
}
/** A blob: its bytes are the blob line with this key. */
export interface ManifestBlobRef {
  typename: string;
  blob: string;
  /** The root blob's labels (format version 2), never hashed; absent when it has none. */
  labels?: Record<string, string>;
}
export type ManifestNode = ManifestObject | ManifestBlobRef;

export interface ManifestHeader {
  format: typeof ARCHIVE_FORMAT;
  version: typeof ARCHIVE_VERSION | typeof ARCHIVE_VERSION_ROOT_BLOB_LABELS;
  topHash: string;
  /** The object's parents (lineage) as ids, informative only: never part of the topHash. */
  parents: string[];
  root: ManifestNode;
}

export interface ManifestBlob {
  key: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  header: ManifestHeader;
  blobs: ManifestBlob[];
}

export function isBlobRef(node: ManifestNode): node is ManifestBlobRef {
  return 'blob' in node;
}

/** The key of member `key` under `parent`: a JSON pointer (RFC 6901), the root being "". */
export function memberPointer(parent: string, key: string): string {
  return `${parent}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** sha256 over the canonical form: typenames, fields, member keys, blob sizes and hashes. */
export function computeTopHash(root: ManifestNode, blobs: ReadonlyMap<string, ManifestBlob>): string {
  return createHash('sha256')
    .update(canonicalJson(canonicalForm(root, blobs)), 'utf8')
    .digest('hex');
}

function canonicalForm(node: ManifestNode, blobs: ReadonlyMap<string, ManifestBlob>): Json {
  if (isBlobRef(node)) {
    const blob = blobs.get(node.blob)!;
    return { typename: node.typename, size: blob.size, sha256: blob.sha256 };
  }
  const members: { [key: string]: Json } = {};
  for (const [key, member] of Object.entries(node.members)) members[key] = canonicalForm(member, blobs);
  return { typename: node.typename, fields: node.fields, members };
}

export function formatManifest(manifest: Manifest): string {
  return [manifest.header, ...manifest.blobs].map((line) => JSON.stringify(line)).join('\n') + '\n';
}

/**
 * Parses and checks a manifest: its shape (ParseError with the line), that its blob lines and
 * its tree name the same blobs, and that its topHash is that of its content (HashMismatch).
 * `where` names the file in messages.
 */
export function parseManifest(text: string, where: string): Manifest {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw new TrellisError('ParseError', `${where} line 1: the manifest is empty`);
  const parseLine = (index: number): Record<string, unknown> => {
    let value: unknown;
    try {
      value = JSON.parse(lines[index]);
    } catch (error) {
      throw new TrellisError('ParseError', `${where} line ${index + 1}: not JSON (${(error as Error).message})`, {
        cause: error,
      });
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new TrellisError('ParseError', `${where} line ${index + 1}: expected a JSON object`);
    }
    return value as Record<string, unknown>;
  };
  const header = parseHeader(parseLine(0), `${where} line 1`);
  const blobs: ManifestBlob[] = [];
  const byKey = new Map<string, ManifestBlob>();
  for (let i = 1; i < lines.length; i++) {
    const blob = parseBlobLine(parseLine(i), `${where} line ${i + 1}`);
    if (byKey.has(blob.key))
      throw new TrellisError('ParseError', `${where} line ${i + 1}: blob ${JSON.stringify(blob.key)} is listed twice`);
    byKey.set(blob.key, blob);
    blobs.push(blob);
  }
  const inTree = new Set<string>();
  collectBlobKeys(header.root, inTree);
  for (const key of inTree) {
    if (!byKey.has(key))
      throw new TrellisError('HashMismatch', `${where}: blob ${JSON.stringify(key)} of the tree has no blob line`);
  }
  for (const blob of blobs) {
    if (!inTree.has(blob.key))
      throw new TrellisError(
        'HashMismatch',
        `${where}: extra blob ${JSON.stringify(blob.key)}: no member of the tree is that blob`,
      );
  }
  const actual = computeTopHash(header.root, byKey);
  if (actual !== header.topHash) {
    throw new TrellisError(
      'HashMismatch',
      `${where}: topHash ${header.topHash} does not match the content described (${actual})`,
    );
  }
  return { header, blobs };
}

function collectBlobKeys(node: ManifestNode, keys: Set<string>): void {
  if (isBlobRef(node)) keys.add(node.blob);
  else for (const member of Object.values(node.members)) collectBlobKeys(member, keys);
}

function parseHeader(line: Record<string, unknown>, where: string): ManifestHeader {
  if (line.format !== ARCHIVE_FORMAT)
    throw new TrellisError(
      'ParseError',
      `${where}: format must be ${JSON.stringify(ARCHIVE_FORMAT)}, got ${JSON.stringify(line.format)}`,
    );
  if (!READABLE_VERSIONS.includes(line.version as number)) {
    throw new TrellisError(
      'ParseError',
      `${where}: archive format version ${JSON.stringify(line.version)} is not supported ` +
        `(this trellis reads ${READABLE_VERSIONS.join(' and ')})`,
    );
  }
  const version = line.version as ManifestHeader['version'];
  if (typeof line.topHash !== 'string' || !SHA256_HEX.test(line.topHash))
    throw new TrellisError('ParseError', `${where}: topHash must be 64 lowercase hex digits`);
  const parents = line.parents ?? [];
  if (!Array.isArray(parents) || !parents.every((p) => typeof p === 'string'))
    throw new TrellisError('ParseError', `${where}: parents must be a list of strings`);
  return {
    format: ARCHIVE_FORMAT,
    version,
    topHash: line.topHash,
    parents,
    root: parseNode(line.root, '', where, 0, version === ARCHIVE_VERSION_ROOT_BLOB_LABELS),
  };
}

function parseNode(
  value: unknown,
  pointer: string,
  where: string,
  depth: number,
  rootBlobLabels = false,
): ManifestNode {
  const at = `${where}: node ${JSON.stringify(pointer)}`;
  if (depth > MAX_DEPTH) throw new TrellisError('ParseError', `${at}: members nest deeper than ${MAX_DEPTH}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new TrellisError('ParseError', `${at}: expected an object`);
  const node = value as Record<string, unknown>;
  if (typeof node.typename !== 'string' || node.typename.length === 0)
    throw new TrellisError('ParseError', `${at}: typename must be a string`);
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const checkLabels = (labels: Record<string, unknown>): void => {
    for (const [key, label] of Object.entries(labels)) {
      if (typeof label !== 'string')
        throw new TrellisError('ParseError', `${at}: label ${JSON.stringify(key)} must be a string`);
    }
  };
  if ('blob' in node) {
    // Version 2 gives the root blob a place for its labels; any other blob NODE has none.
    const labelled = rootBlobLabels && pointer === '' && 'labels' in node;
    if (node.blob !== pointer || Object.keys(node).length !== (labelled ? 3 : 2) || (labelled && !isMap(node.labels))) {
      const shape = rootBlobLabels && pointer === '' ? '{ typename, blob, labels? }' : '{ typename, blob }';
      throw new TrellisError('ParseError', `${at}: a blob is ${shape} with blob ${JSON.stringify(pointer)}, its key`);
    }
    if (!labelled) return { typename: node.typename, blob: pointer };
    checkLabels(node.labels as Record<string, unknown>);
    return { typename: node.typename, blob: pointer, labels: node.labels as Record<string, string> };
  }
  if (!isMap(node.fields) || !isMap(node.labels) || !isMap(node.members) || Object.keys(node).length !== 4) {
    throw new TrellisError('ParseError', `${at}: an object is { typename, fields, labels, members }`);
  }
  checkLabels(node.labels);
  const members: Record<string, ManifestNode> = {};
  for (const [key, member] of Object.entries(node.members))
    members[key] = parseNode(member, memberPointer(pointer, key), where, depth + 1);
  return {
    typename: node.typename,
    fields: node.fields as { [key: string]: Json },
    labels: node.labels as Record<string, string>,
    members,
  };
}

function parseBlobLine(line: Record<string, unknown>, where: string): ManifestBlob {
  const { key, size, sha256 } = line;
  if (
    typeof key !== 'string' ||
    !Number.isSafeInteger(size) ||
    (size as number) < 0 ||
    typeof sha256 !== 'string' ||
    !SHA256_HEX.test(sha256) ||
    Object.keys(line).length !== 3
  ) {
    throw new TrellisError(
      'ParseError',
      `${where}: a blob line is { key, size, sha256 } (size a non-negative integer, sha256 64 lowercase hex digits)`,
    );
  }
  return { key, size: size as number, sha256 };
}
