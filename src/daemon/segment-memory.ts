/**
 * The daemon's own access to blob bytes, for sessions that cannot map fds: RPC clients and other
 * daemons copy bytes through their frames, and the daemon reads and writes them here. Local
 * clients come through this file only for small blobs sent inline (inline-blobs.ts).
 *
 * Each segment is mapped lazily: once read-only, for reads, and once writable, only when a blob
 * in it is written; both are forgotten when the pool releases the segment. Writes go through an
 * ArrayBuffer of exactly the blob's bytes that is detached when the write is done, so no daemon
 * code can reach a sealed neighbour by mistake; small writes (inline blobs from local clients,
 * see inline-blobs.ts) copy through one private view of the segment, bounded by the blob in write().
 */
import { native, type NativeMapping } from '../native';
import type { BlobLocation } from '../protocol/messages';

interface MappedSegment {
  readOnly?: NativeMapping;
  readWrite?: NativeMapping;
  /** The whole writable mapping, for small copies only (write); it never leaves this file. */
  writableBytes?: Uint8Array;
  /** 2 MiB chunks of the writable mapping whose pages are already faulted in. */
  prefaulted?: Set<number>;
}

const PREFAULT_CHUNK = 2 * 1024 * 1024;
/** Writes up to this size (inline blobs) copy through writableSegment rather than a slice of their own. */
const SMALL_WRITE_BYTES = 64 * 1024;

export type SegmentFds = (segment: number) => { fd: number; size: number };

export class SegmentMemory {
  private readonly segments = new Map<number, MappedSegment>();

  constructor(private readonly fdOf: SegmentFds) {}

  /** A read-only view of `length` bytes of the blob from `offset` (checked by the caller): no copy. */
  read(blob: BlobLocation, offset: number, length: number): Buffer {
    const mapped = this.mapped(blob.segment);
    if (!mapped.readOnly) {
      const { fd, size } = this.fdOf(blob.segment);
      // Populated at once: one system call instead of a fault per page as the socket reads it.
      mapped.readOnly = new native.Mapping(fd, size, false, true);
    }
    return Buffer.from(mapped.readOnly.buffer, blob.offset + offset, length);
  }

  /**
   * A writable view of `length` bytes of the blob from `offset` (checked by the caller), for its
   * writer until `closeWritable`. The pages are faulted in now with one system call, unless this
   * process did so before.
   */
  openWritable(blob: BlobLocation, offset = 0, length = blob.size): Uint8Array {
    const mapped = this.mapped(blob.segment);
    if (!mapped.readWrite) {
      const { fd, size } = this.fdOf(blob.segment);
      mapped.readWrite = new native.Mapping(fd, size, true);
    }
    const start = blob.offset + offset;
    return new Uint8Array(mapped.readWrite.slice(start, length, this.needsPrefault(mapped, start, length)));
  }

  /** Detaches a view from openWritable. */
  closeWritable(view: Uint8Array): void {
    native.detach(view.buffer as ArrayBuffer);
  }

  /** Copies `bytes` into the blob at `offset` (checked by the caller). */
  write(blob: BlobLocation, offset: number, bytes: Uint8Array): void {
    if (bytes.byteLength <= SMALL_WRITE_BYTES) {
      // A slice and a detach cost several microseconds, more than the copy of a small inline
      // blob: copy through one private view of the segment instead, bounded by the blob here.
      if (offset + bytes.byteLength > blob.size) throw new RangeError(`write past the end of blob ${blob.id}`);
      this.writableSegment(blob.segment).set(bytes, blob.offset + offset);
      return;
    }
    const view = this.openWritable(blob, offset, bytes.byteLength);
    try {
      view.set(bytes);
    } finally {
      this.closeWritable(view);
    }
  }

  /** The pool released the segment: forget its mappings (views still alive keep their pages). */
  drop(segment: number): void {
    const writable = this.segments.get(segment)?.writableBytes;
    if (writable) native.detach(writable.buffer as ArrayBuffer);
    this.segments.delete(segment);
  }

  close(): void {
    for (const segment of [...this.segments.keys()]) this.drop(segment);
  }

  private writableSegment(segment: number): Uint8Array {
    const mapped = this.mapped(segment);
    if (!mapped.writableBytes) {
      const { fd, size } = this.fdOf(segment);
      mapped.readWrite ??= new native.Mapping(fd, size, true);
      mapped.writableBytes = new Uint8Array(mapped.readWrite.slice(0, size));
    }
    return mapped.writableBytes;
  }

  private mapped(segment: number): MappedSegment {
    let mapped = this.segments.get(segment);
    if (!mapped) {
      mapped = {};
      this.segments.set(segment, mapped);
    }
    return mapped;
  }

  private needsPrefault(mapped: MappedSegment, start: number, length: number): boolean {
    const prefaulted = (mapped.prefaulted ??= new Set());
    let needed = false;
    const last = Math.floor((start + Math.max(length, 1) - 1) / PREFAULT_CHUNK);
    for (let chunk = Math.floor(start / PREFAULT_CHUNK); chunk <= last; chunk++) {
      if (!prefaulted.has(chunk)) {
        prefaulted.add(chunk);
        needed = true;
      }
    }
    return needed;
  }
}
