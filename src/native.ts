/**
 * The only file that loads the addon. node-gyp-build looks in the package root: first
 * build/Release/trellis.node (a clone's cmake-js or node-gyp build, or one made on a user's machine
 * when no prebuild fits), then prebuilds/<platform>-<arch>/ (the addon shipped in the package). The
 * root is found by walking up to package.json, so the same code works from src/ (tsx) and dist/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TrellisError } from './errors';

export interface NativeSegment {
  readonly fd: number;
  readonly size: number;
  /** Closes the fd; clients' mappings keep their pages. */
  close(): void;
  /** Punches the pages out first, so the memory returns even while clients still map it. */
  release(): void;
}

export interface NativeMapping {
  /** The whole read-only mapping; throws for writable mappings. */
  readonly buffer: ArrayBuffer;
  /**
   * The whole read-only mapping as one SharedArrayBuffer (made once), whose bytes V8 does not
   * count as this process's external memory; undefined when the addon cannot make one (built
   * without V8's headers, or run by another Node major). Throws for writable mappings.
   */
  readonly sharedBuffer: SharedArrayBuffer | undefined;
  /** The file lies on huge pages: its tmpfs reports a block size of 2 MiB or more (read when mapped). */
  readonly hugePages: boolean;
  /** An ArrayBuffer over exactly [offset, offset + length); `prefault` maps its pages now. */
  slice(offset: number, length: number, prefault?: boolean): ArrayBuffer;
  /** Copies `bytes` to `offset` of a writable mapping, with no ArrayBuffer made; `prefault` as in slice. */
  write(offset: number, bytes: Uint8Array, prefault?: boolean): void;
  /**
   * Maps the pages of [offset, offset + length) now, in one system call (MADV_POPULATE_READ, or
   * _WRITE for a writable mapping), rather than one fault per page on first touch. Best effort,
   * never faults: 'unsupported' before Linux 5.14, 'failed' when part of the range has no pages
   * (past the end of the file). The bytes read the same whatever it answers.
   */
  populate(offset: number, length: number): PopulateResult;
}

export type PopulateResult = 'populated' | 'unsupported' | 'failed';

export interface NativeAllocator {
  /** The offset of a 64-byte-aligned block, or -1 when nothing fits. */
  allocate(size: number): number;
  /** Bytes released, 0 when offset was not allocated. */
  free(offset: number): number;
  /**
   * Cuts the block at `offset` in two blocks, each freed on its own: its first `length` bytes
   * (64-byte aligned) and the rest, whose offset it returns; -1 when `offset` is no block or
   * the front would be all of it. Nothing is freed or taken (put rings, daemon/put-rings.ts).
   */
  split(offset: number, length: number): number;
  readonly used: number;
  readonly capacity: number;
  readonly largestFree: number;
}

/** XXH64 (seed 0) of bytes given in order; see native/checksum.h. */
export interface NativeChecksum {
  /** Hashes `view` on libuv's threadpool; `view` must not change until it settles. One at a time. */
  update(view: Uint8Array): Promise<void>;
  /** Hashes `view` on this thread (small buffers). */
  updateSync(view: Uint8Array): void;
  /** 16 lowercase hex digits. */
  digest(): string;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

interface Addon {
  initialize(errorClass: typeof TrellisError): void;
  /** `dir`: a tmpfs folder for an unnamed file (bounded by its size); '' for a memfd. */
  Segment: {
    new (size: number, name: string, dir?: string): NativeSegment;
    /** The same segment, its file created and pages reserved on a worker thread (off the event loop). */
    reserve(size: number, name: string, dir?: string): Promise<NativeSegment>;
  };
  Mapping: new (fd: number, size: number, writable: boolean, populate?: boolean) => NativeMapping;
  Allocator: new (capacity: number) => NativeAllocator;
  Checksum: new () => NativeChecksum;
  detach(buffer: ArrayBuffer): void;
  connectUnix(path: string): number;
  sendBytes(socketFd: number, bytes: Uint8Array): void;
  sendFd(socketFd: number, fd: number, tag: number): void;
  recvFd(socketFd: number, timeoutMs: number): { fd: number; tag: number };
  closeFd(fd: number): void;
  peerCredentials(socketFd: number): PeerCredentials;
  /** flock(LOCK_EX | LOCK_NB): true when `fd` now holds the lock, false when another holder has it. */
  lockFile(fd: number): boolean;
}

/** Finds the addon for this platform in a package folder; throws when there is none. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const findAddon = require('node-gyp-build') as { path(packageRoot: string): string };

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}

/** TRELLIS_ADDON points at another build of the addon, such as a sanitizer build. */
export const ADDON_ENV = 'TRELLIS_ADDON';

function addonFile(): string {
  const override = process.env[ADDON_ENV];
  if (override) {
    if (!fs.existsSync(override)) throw new TrellisError('IOError', `${ADDON_ENV}=${override}: no such file`);
    return override;
  }
  const root = findPackageRoot(__dirname);
  try {
    return findAddon.path(root);
  } catch (error) {
    throw new TrellisError(
      'IOError',
      `the native addon is not built: no ${path.join(root, 'build', 'Release', 'trellis.node')} and no prebuild ` +
        `for ${process.platform}-${process.arch} (in a clone run npm install; where trellis is a dependency, ` +
        'let its install script build it: npm rebuild trellis)',
      { cause: error },
    );
  }
}

function loadAddon(): Addon {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const addon = require(addonFile()) as Addon;
  addon.initialize(TrellisError);
  return addon;
}

export const native: Addon = loadAddon();
