/**
 * The client's view of the daemon's segments: one fd per segment (received once), mapped at
 * most once read-only and once read-write per process. Reads are Buffers over the read-only
 * mapping, so writing through one (or its .buffer) faults instead of changing a sealed object.
 * A writer's unsealed blob gets an ArrayBuffer of exactly its own bytes, detached at seal; the
 * writer then reads what it sealed through view(), as any reader does.
 *
 * A read is a view of one SharedArrayBuffer over the whole read-only mapping, made once per
 * segment. V8 counts an external ArrayBuffer's bytes as memory this process allocated and starts
 * a garbage collection when that count grows by more than 64 MiB; it does not count a
 * SharedArrayBuffer's (its memory may be shared by many isolates). Through ArrayBuffers, a fresh
 * process's first get of a 1 GiB value cost 10-40 ms of GC (incremental marking started at the
 * mapping, finished by a scavenge and a mark-compact soon after); through the SharedArrayBuffer it
 * costs none. Its bytes are still read-only: a write through a view faults, as before.
 *
 * An addon built without V8's headers (or run by another Node major, or in Electron, whose V8
 * sandbox refuses outside memory) has no SharedArrayBuffer to give: reads then view the
 * read-only window of READ_WINDOW bytes that holds the blob, an ArrayBuffer made when first
 * needed (so a small blob never maps a large segment's worth of counted bytes), and a blob that
 * does not fit in one window the whole segment's ArrayBuffer, made once.
 *
 * First touch: a read of a page this process has not mapped yet costs a page fault, and on a
 * machine with shadow paging (a VM without nested page tables, as here) a far larger trap on
 * top, one per 4 KiB page-table entry; a 1 GiB scan then takes hundreds of ms instead of tens.
 * Pre-populating 4 KiB entries (MADV_POPULATE_READ, MAP_POPULATE) does not remove those traps,
 * nor does a second thread touching half the pages (no gain measured, docs/troubleshooting.md),
 * so on 4 KiB pages reads fault as they go.
 * Huge pages do remove them: the daemon gives the segments it reserves 2 MiB pages where the
 * kernel allows (native/segment.h), and every mapping is 2 MiB-aligned (native/mapping.cc), so a
 * read maps a whole 2 MiB page per fault. When the segment's tmpfs reports huge pages itself
 * (a --shm-dir mounted with huge=), one MADV_POPULATE_READ maps a blob's pages at its first view
 * too, for well under a ms per GiB.
 */
import { TrellisError } from '../errors';
import { native, type NativeMapping } from '../native';
import type { BlobLocation } from '../protocol/messages';

interface MappedSegment {
  fd: number;
  size: number;
  readOnly?: NativeMapping;
  /** The read-only mapping as one SharedArrayBuffer; null when the addon cannot make one (see above). */
  shared?: SharedArrayBuffer | null;
  /** ArrayBuffers over windows of the read-only mapping, by window index. */
  windows?: Map<number, ArrayBuffer>;
  readWrite?: NativeMapping;
  /** 2 MiB chunks of the writable mapping whose pages this process has already faulted in. */
  prefaulted?: Set<number>;
  /** The segment's file lies on huge pages: reads populate the page tables at first view. */
  hugePages?: boolean;
  /** 2 MiB chunks of the read-only mapping already populated (only on huge pages). */
  populated?: Set<number>;
}

/** Electron's V8 sandbox refuses memory it did not allocate: there, only napi's ArrayBuffers. */
const SHARED_VIEWS = process.versions.electron === undefined;

/** Without a SharedArrayBuffer, reads view the read-only mapping through ArrayBuffers of this size (see above). */
const READ_WINDOW = 16 * 1024 * 1024;

/** Writable pages are faulted in once per process, in chunks of this size. */
const PREFAULT_CHUNK = 2 * 1024 * 1024;

/** A huge page: a file on them (native Mapping.hugePages) is populated in chunks of this size. */
const HUGE_PAGE = 2 * 1024 * 1024;

export class SegmentMappings {
  private readonly segments = new Map<number, MappedSegment>();
  /** Every ArrayBuffer handed out, to answer isSharedMemory. */
  private readonly shared = new WeakSet<ArrayBufferLike>();

  /** `sharedViews`: false views through ArrayBuffers even where a SharedArrayBuffer can be made (tests). */
  constructor(private readonly sharedViews = SHARED_VIEWS) {}

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

  /** Whether this process has been sent the segment's fd (and not told to drop it). */
  has(segment: number): boolean {
    return this.segments.has(segment);
  }

  /**
   * A read-only Buffer over a sealed blob: no copy. With `plain`, the same bytes as a plain
   * Uint8Array where the mapping is one SharedArrayBuffer, for a reader that only makes typed
   * arrays over them (a DataFrame's columns from the read index): V8's own constructor, where
   * Buffer.from runs Node's JS for every view. Either throws for a range outside the segment.
   */
  view(blob: BlobLocation): Buffer;
  view(blob: BlobLocation, plain: true): Uint8Array;
  view(blob: BlobLocation, plain = false): Uint8Array {
    const segment = this.segment(blob);
    const mapping = (segment.readOnly ??= this.mapReadOnly(segment));
    if (segment.hugePages) this.populate(segment, mapping, blob);
    if (segment.shared === undefined) {
      const shared = this.sharedViews ? mapping.sharedBuffer : undefined;
      segment.shared = shared ? this.track(shared) : null;
    }
    if (segment.shared) {
      return plain
        ? new Uint8Array(segment.shared, blob.offset, blob.size)
        : Buffer.from(segment.shared, blob.offset, blob.size);
    }
    const index = Math.floor(blob.offset / READ_WINDOW);
    const start = index * READ_WINDOW;
    if (blob.offset + blob.size > start + READ_WINDOW)
      return Buffer.from(this.track(mapping.buffer), blob.offset, blob.size);
    const windows = (segment.windows ??= new Map());
    let window = windows.get(index);
    if (!window) {
      window = this.track(mapping.slice(start, Math.min(READ_WINDOW, segment.size - start)));
      windows.set(index, window);
    }
    return Buffer.from(window, blob.offset - start, blob.size);
  }

  /**
   * A writable ArrayBuffer of exactly the blob's bytes, for its creator until seal. `prefault`
   * false leaves the pages to be faulted as they are written (the read index's hold counters,
   * of which a client touches a few pages).
   */
  writable(blob: BlobLocation, prefault = true): ArrayBuffer {
    const segment = this.segment(blob);
    segment.readWrite ??= new native.Mapping(segment.fd, segment.size, true);
    return this.track(segment.readWrite.slice(blob.offset, blob.size, prefault && this.needsPrefault(segment, blob)));
  }

  /**
   * Copies `bytes` into the start of an unsealed blob of this client's, through no ArrayBuffer:
   * V8 counts an external ArrayBuffer's bytes (writable() makes one a blob), and a stream writer
   * that made one per 1 MiB chunk started a garbage collection every few dozen chunks.
   */
  fill(blob: BlobLocation, bytes: Uint8Array): void {
    const segment = this.segment(blob);
    segment.readWrite ??= new native.Mapping(segment.fd, segment.size, true);
    segment.readWrite.write(blob.offset, bytes, this.needsPrefault(segment, blob));
  }

  private mapReadOnly(segment: MappedSegment): NativeMapping {
    const mapping = new native.Mapping(segment.fd, segment.size, false);
    segment.hugePages = mapping.hugePages;
    return mapping;
  }

  /** Maps the blob's huge pages that no earlier view mapped; best effort (see the top). */
  private populate(segment: MappedSegment, mapping: NativeMapping, blob: BlobLocation): void {
    const populated = (segment.populated ??= new Set());
    const first = Math.floor(blob.offset / HUGE_PAGE);
    const last = Math.floor((blob.offset + Math.max(blob.size, 1) - 1) / HUGE_PAGE);
    let missing = false;
    // Whatever the kernel answers, the chunks are not asked again: a refusal would repeat.
    for (let chunk = first; chunk <= last; chunk++) {
      if (!populated.has(chunk)) {
        populated.add(chunk);
        missing = true;
      }
    }
    if (!missing) return;
    // Repopulating a chunk an earlier view mapped is one page-table check: cheaper than two calls.
    const start = first * HUGE_PAGE;
    mapping.populate(start, Math.min((last + 1) * HUGE_PAGE, segment.size) - start);
  }

  /** Remembers a buffer as shared memory, for isSharedMemory. */
  private track<T extends ArrayBufferLike>(buffer: T): T {
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
    if (!segment)
      throw new TrellisError(
        'ProtocolError',
        `blob ${blob.id} is in segment ${blob.segment}, which this client was never sent`,
      );
    return segment;
  }
}
