/**
 * The client's view of the daemon's segments: one fd per segment (received once), mapped at
 * most once read-only and once read-write per process. Reads are Buffers over the read-only
 * mapping, so writing through one (or its .buffer) faults instead of changing a sealed object.
 * A writer's unsealed blob gets an ArrayBuffer of exactly its own bytes, detached at seal.
 */
import { TrellisError } from '../errors';
import { native, type NativeMapping } from '../native';
import type { BlobLocation } from '../protocol/messages';

interface MappedSegment {
  fd: number;
  size: number;
  readOnly?: NativeMapping;
  readWrite?: NativeMapping;
  /** 2 MiB chunks of the writable mapping whose pages this process has already faulted in. */
  prefaulted?: Set<number>;
}

/** Writable pages are faulted in once per process, in chunks of this size. */
const PREFAULT_CHUNK = 2 * 1024 * 1024;

export class SegmentMappings {
  private readonly segments = new Map<number, MappedSegment>();
  /** Every ArrayBuffer handed out, to answer isSharedMemory. */
  private readonly shared = new WeakSet<ArrayBufferLike>();

  add(segment: number, fd: number, size: number): void {
    const previous = this.segments.get(segment);
    if (previous) native.closeFd(previous.fd);
    this.segments.set(segment, { fd, size });
  }

  /** The daemon released the segment: forget it. Views still alive keep their pages mapped. */
  drop(segment: number): void {
    const found = this.segments.get(segment);
    if (!found) return;
    native.closeFd(found.fd);
    this.segments.delete(segment);
  }

  /** A read-only Buffer over a sealed blob: no copy. */
  view(blob: BlobLocation): Buffer {
    const segment = this.segment(blob);
    if (!segment.readOnly) {
      segment.readOnly = new native.Mapping(segment.fd, segment.size, false);
      this.shared.add(segment.readOnly.buffer);
    }
    return Buffer.from(segment.readOnly.buffer, blob.offset, blob.size);
  }

  /** A writable ArrayBuffer of exactly the blob's bytes, for its creator until seal. */
  writable(blob: BlobLocation): ArrayBuffer {
    const segment = this.segment(blob);
    segment.readWrite ??= new native.Mapping(segment.fd, segment.size, true);
    const buffer = segment.readWrite.slice(blob.offset, blob.size, this.needsPrefault(segment, blob));
    this.shared.add(buffer);
    return buffer;
  }

  /** True (and remembered) when part of the blob's pages were never faulted in by this process. */
  private needsPrefault(segment: MappedSegment, blob: BlobLocation): boolean {
    const prefaulted = (segment.prefaulted ??= new Set());
    let needed = false;
    const last = Math.floor((blob.offset + Math.max(blob.size, 1) - 1) / PREFAULT_CHUNK);
    for (let chunk = Math.floor(blob.offset / PREFAULT_CHUNK); chunk <= last; chunk++) {
      if (!prefaulted.has(chunk)) {
        prefaulted.add(chunk);
        needed = true;
      }
    }
    return needed;
  }

  isSharedMemory(view: ArrayBufferView | ArrayBufferLike): boolean {
    const buffer = ArrayBuffer.isView(view) ? view.buffer : view;
    return this.shared.has(buffer);
  }

  /** Closes the fds; mappings go when the last view over them is collected. */
  close(): void {
    for (const segment of this.segments.values()) native.closeFd(segment.fd);
    this.segments.clear();
  }

  private segment(blob: BlobLocation): MappedSegment {
    const segment = this.segments.get(blob.segment);
    if (!segment) throw new TrellisError('ProtocolError', `blob ${blob.id} is in segment ${blob.segment}, which this client was never sent`);
    return segment;
  }
}
