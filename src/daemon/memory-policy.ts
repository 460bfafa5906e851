/**
 * Decides how shared memory is reserved; the segment pool asks, the allocator only allocates.
 *
 * Segments are created on demand, so a daemon with a 2 GiB limit reserves nothing until it is
 * used. Ordinary blobs share standard segments (an eighth of the limit, between 4 and 256 MiB);
 * a blob larger than that gets a segment of its own. An empty segment is kept for reuse (a
 * fresh segment costs a fallocate and every client's page faults) until it has been idle for
 * `idleReleaseMs`, or until its room is needed for a segment of another size.
 */
import { TrellisError } from '../errors';
import { formatBytes } from './sizes';

const MiB = 1024 * 1024;
export const MIN_STANDARD_SEGMENT = 4 * MiB;
export const MAX_STANDARD_SEGMENT = 256 * MiB;
/** Node refuses external ArrayBuffers of 4 GiB and more. */
export const MAX_SEGMENT_BYTES = 4 * 1024 * MiB - 2 * MiB;
/** Large segments are rounded to huge-page size. */
export const SEGMENT_GRANULE = 2 * MiB;
export const DEFAULT_IDLE_RELEASE_MS = 30_000;

export interface SegmentUsage {
  id: number;
  size: number;
  used: number;
  idleSince: number;
}

export class MemoryPolicy {
  readonly standardSegmentSize: number;

  constructor(
    readonly limit: number,
    readonly idleReleaseMs = DEFAULT_IDLE_RELEASE_MS,
  ) {
    const eighth = Math.floor(limit / 8 / MiB) * MiB;
    this.standardSegmentSize = Math.min(limit, Math.max(MIN_STANDARD_SEGMENT, Math.min(MAX_STANDARD_SEGMENT, eighth)));
  }

  /** The size of a new segment to hold a blob of `size` bytes, or an OutOfMemory error. */
  segmentSizeFor(size: number, reserved: number): number {
    if (size > MAX_SEGMENT_BYTES) {
      throw new TrellisError(
        'OutOfMemory',
        `a blob of ${size} bytes (${formatBytes(size)}) is larger than the largest segment, ${formatBytes(MAX_SEGMENT_BYTES)}`,
      );
    }
    const room = this.limit - reserved;
    const wanted = size <= this.standardSegmentSize ? this.standardSegmentSize : roundUp(size, SEGMENT_GRANULE);
    if (wanted <= room) return wanted;
    // Near the limit, a segment just big enough still fits where a standard one does not.
    const tight = roundUp(Math.max(size, 1), 64 * 1024);
    return tight <= room ? tight : 0;
  }

  /** Empty segments to release, oldest first, so that `needed` bytes can be reserved. */
  releaseToFit(segments: SegmentUsage[], reserved: number, needed: number): number[] {
    const chosen: number[] = [];
    let room = this.limit - reserved;
    for (const segment of emptiest(segments)) {
      if (room >= needed) break;
      chosen.push(segment.id);
      room += segment.size;
    }
    return room >= needed ? chosen : [];
  }

  /** Empty segments idle for longer than the policy keeps them. */
  idle(segments: SegmentUsage[], now: number): number[] {
    return segments.filter((s) => s.used === 0 && now - s.idleSince >= this.idleReleaseMs).map((s) => s.id);
  }
}

function emptiest(segments: SegmentUsage[]): SegmentUsage[] {
  return segments.filter((s) => s.used === 0).sort((a, b) => a.idleSince - b.idleSince);
}

function roundUp(value: number, granule: number): number {
  return Math.ceil(value / granule) * granule;
}
