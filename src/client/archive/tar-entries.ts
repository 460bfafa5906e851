/**
 * The tar form of an archive: the same tree as the directory, as ustar entries. Headers are
 * encoded and decoded by the `tar` package's Header (and Pax for extended headers); the bytes
 * are written and read here, at known offsets, so a blob goes between shared memory and the
 * file with no stream in between. Entries with absolute paths, `..`, or of any kind but files
 * and directories (links, devices) are refused: an archive never reaches outside its tree.
 */
import type { FileHandle } from 'node:fs/promises';
import { Header, Pax } from 'tar';
import { TrellisError } from '../../errors';
import { readFully, writeFully } from './blob-io';

export const BLOCK_BYTES = 512;

/** Where a file entry's bytes are in the tar. */
export interface TarEntry {
  position: number;
  size: number;
}

export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK_BYTES) * BLOCK_BYTES;
}

/** A header block; mtime 0 and no owner, so the same content gives the same tar bytes. */
export function encodeHeader(path: string, size: number, type: 'File' | 'Directory'): Buffer {
  const block = Buffer.alloc(BLOCK_BYTES);
  const header = new Header({
    path,
    size,
    type,
    mode: type === 'File' ? 0o644 : 0o755,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    mtime: new Date(0),
  });
  header.encode(block, 0);
  return block;
}

/** The zero padding after `size` bytes of data, then (at the end) two zero blocks. */
export async function writePadding(file: FileHandle, size: number, position: number): Promise<number> {
  const padding = paddedSize(size) - size;
  if (padding > 0) await writeFully(file, Buffer.alloc(padding), position);
  return padding;
}

/**
 * The tar's files by normalized path (`./` dropped). `where` names the tar in messages.
 * Errors: ParseError (a bad header, a refused entry, a path twice), IOError.
 */
export async function scanTar(file: FileHandle, tarSize: number, where: string): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const block = Buffer.alloc(BLOCK_BYTES);
  let extended: Pax | undefined;
  let longPath: string | undefined;
  for (let position = 0; position + BLOCK_BYTES <= tarSize;) {
    await readFully(file, block, position, where);
    const header = new Header(block, 0, extended);
    if (header.nullBlock) break;
    if (!header.cksumValid) throw new TrellisError('ParseError', `${where}: bad tar header at byte ${position}`);
    const size = header.size ?? 0;
    const dataPosition = position + BLOCK_BYTES;
    if (dataPosition + size > tarSize)
      throw new TrellisError('ParseError', `${where}: entry at byte ${position} runs past the end of the tar`);
    position = dataPosition + paddedSize(size);
    const body = async () => {
      const bytes = Buffer.alloc(size);
      await readFully(file, bytes, dataPosition, where);
      return bytes.toString('utf8');
    };
    switch (header.type) {
      case 'ExtendedHeader':
        extended = Pax.parse(await body(), extended, false);
        continue;
      case 'GlobalExtendedHeader':
        continue;
      case 'NextFileHasLongPath':
        longPath = (await body()).replace(/\0+$/, '');
        continue;
    }
    const rawPath = longPath ?? header.path ?? '';
    extended = undefined;
    longPath = undefined;
    const path = normalizePath(rawPath, where);
    if (header.type === 'Directory') continue;
    if (header.type !== 'File' && header.type !== 'OldFile' && header.type !== 'ContiguousFile') {
      throw new TrellisError(
        'ParseError',
        `${where}: entry ${JSON.stringify(rawPath)} is a ${header.type}: only files and directories are accepted`,
      );
    }
    if (entries.has(path))
      throw new TrellisError('ParseError', `${where}: entry ${JSON.stringify(rawPath)} appears twice`);
    entries.set(path, { position: dataPosition, size });
  }
  return entries;
}

function normalizePath(rawPath: string, where: string): string {
  if (rawPath.startsWith('/') || /^[A-Za-z]:/.test(rawPath) || rawPath.includes('\\')) {
    throw new TrellisError('ParseError', `${where}: entry ${JSON.stringify(rawPath)} has an absolute path: refused`);
  }
  const parts = rawPath.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..'))
    throw new TrellisError('ParseError', `${where}: entry ${JSON.stringify(rawPath)} has a "..": refused`);
  return parts.join('/');
}
