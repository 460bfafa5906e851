/**
 * The daemon's shared memory: segments (native memfds) and one allocator per segment. Blocks
 * are placed by first fit over segments, best fit inside one; the memory policy decides when to
 * reserve a new segment and which empty ones to give back.
 */
import { TrellisError } from '../errors';
import { native, type NativeAllocator, type NativeSegment } from '../native';
import { MemoryPolicy, type Room, type SegmentUsage } from './memory-policy';
import { SegmentMemory } from './segment-memory';
import { formatBytes } from './sizes';

export interface Placement {
  segment: number;
  offset: number;
}

interface PooledSegment extends SegmentUsage {
  memory: NativeSegment;
  allocator: NativeAllocator;
}

export class SegmentPool {
  private readonly segments = new Map<number, PooledSegment>();
  private nextSegmentId = 1;
  private reservedBytes = 0;
  private usedBytes = 0;
  private readonly idleTimer: NodeJS.Timeout;

  /** The daemon's own mappings, for sessions that copy bytes through the RPC port. */
  readonly memory = new SegmentMemory((segment) => this.segmentFd(segment));

  /**
   * `shmDir`: the tmpfs folder segments are created in ('' for memfds). `onRelease` is called
   * after a segment is released, so that clients can drop their fds and mappings.
   */
  constructor(
    readonly policy: MemoryPolicy,
    private readonly shmDir: string,
    private readonly onRelease: (segment: number) => void = () => {},
  ) {
    this.idleTimer = setInterval(() => this.releaseIdle(), Math.max(1000, policy.idleReleaseMs / 2));
    this.idleTimer.unref();
  }

  get used(): number {
    return this.usedBytes;
  }
  get reserved(): number {
    return this.reservedBytes;
  }
  get count(): number {
    return this.segments.size;
  }
  /** What `reserved` can grow to now: the limit, or less when the machine holds less (a live reading). */
  get capacity(): number {
    return this.policy.capacity(this.reservedBytes);
  }

  segmentFd(segment: number): { fd: number; size: number } {
    const found = this.segments.get(segment);
    if (!found) throw new TrellisError('ObjectNotFound', `segment ${segment} does not exist`);
    return { fd: found.memory.fd, size: found.size };
  }

  /**
   * Reserves `size` bytes; `what` names the request in the OutOfMemory message.
   * Errors: OutOfMemory.
   */
  allocate(size: number, what: string): Placement {
    for (const segment of this.candidates(size)) {
      const placement = this.allocateIn(segment, size);
      if (placement) return placement;
    }
    const segment = this.reserveSegment(size, what);
    const placement = this.allocateIn(segment, size);
    if (!placement) throw this.outOfMemory(size, what);
    return placement;
  }

  /**
   * Segments that could take `size`, best first: the smallest that fits, so a small blob does
   * not land in (and pin) an idle dedicated segment that a large blob will want back.
   */
  private candidates(size: number): PooledSegment[] {
    const fitting: PooledSegment[] = [];
    for (const segment of this.segments.values()) if (segment.allocator.largestFree >= size) fitting.push(segment);
    return fitting.length > 1 ? fitting.sort((a, b) => a.size - b.size || a.id - b.id) : fitting;
  }

  /**
   * Reserves the first standard segment now, so the first put does not pay for it. A machine
   * that cannot hold even that does not stop the daemon from starting: puts answer OutOfMemory.
   */
  warmUp(): void {
    if (this.segments.size > 0) return;
    try {
      this.reserveSegment(1, 'warm-up');
    } catch (error) {
      if (!(error instanceof TrellisError && error.code === 'OutOfMemory')) throw error;
    }
  }

  /** Returns the bytes the block occupied. */
  free(placement: Placement): number {
    const segment = this.segments.get(placement.segment);
    if (!segment) return 0;
    const released = segment.allocator.free(placement.offset);
    this.usedBytes -= released;
    segment.used -= released;
    if (segment.used === 0) segment.idleSince = Date.now();
    return released;
  }

  close(): void {
    clearInterval(this.idleTimer);
    for (const segment of this.segments.values()) segment.memory.close();
    this.segments.clear();
    this.memory.close();
    this.reservedBytes = 0;
    this.usedBytes = 0;
  }

  private allocateIn(segment: PooledSegment, size: number): Placement | undefined {
    const offset = segment.allocator.allocate(size);
    if (offset < 0) return undefined;
    const taken = segment.allocator.used - segment.used;
    segment.used += taken;
    this.usedBytes += taken;
    return { segment: segment.id, offset };
  }

  private reserveSegment(size: number, what: string): PooledSegment {
    // One reading of the machine per new segment (not per blob): what it can hold right now.
    let machine = this.policy.machineRoom();
    let segmentSize = this.policy.segmentSizeFor(size, this.reservedBytes, machine.bytes);
    if (segmentSize === 0) {
      const wanted = this.policy.segmentSizeFor(size, 0);
      const victims = this.policy.releaseToFit([...this.segments.values()], this.reservedBytes, wanted, machine.bytes);
      victims.forEach((id) => this.release(id));
      if (victims.length > 0) machine = this.policy.machineRoom();
      segmentSize = this.policy.segmentSizeFor(size, this.reservedBytes, machine.bytes);
    }
    if (segmentSize === 0) throw this.outOfMemory(size, what, machine);
    const id = this.nextSegmentId++;
    let memory: NativeSegment;
    try {
      memory = new native.Segment(segmentSize, `trellis-segment-${id}`, this.shmDir);
    } catch (error) {
      throw new TrellisError(
        'OutOfMemory',
        `${what}: the system refused to reserve a ${formatBytes(segmentSize)} segment: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const segment: PooledSegment = {
      id,
      size: segmentSize,
      used: 0,
      idleSince: Date.now(),
      memory,
      allocator: new native.Allocator(segmentSize),
    };
    this.segments.set(id, segment);
    this.reservedBytes += segmentSize;
    return segment;
  }

  private release(id: number): void {
    const segment = this.segments.get(id);
    if (!segment || segment.used !== 0) return;
    segment.memory.release();
    this.segments.delete(id);
    this.memory.drop(id);
    this.reservedBytes -= segment.size;
    this.onRelease(id);
  }

  private releaseIdle(): void {
    for (const id of this.policy.idle([...this.segments.values()], Date.now())) this.release(id);
  }

  /** `machine`: the machine's room when it was read, if that (not --size) is what ran out. */
  private outOfMemory(size: number, what: string, machine?: Room): TrellisError {
    let largest = 0;
    for (const segment of this.segments.values()) largest = Math.max(largest, segment.allocator.largestFree);
    const unreserved = this.policy.limit - this.reservedBytes;
    const machineBound = machine !== undefined && machine.bytes < unreserved;
    const short = machineBound
      ? `; this machine can hold only ${formatBytes(machine.bytes)} more now (${machine.why})`
      : '';
    const free = Math.max(largest, machineBound ? machine.bytes : unreserved);
    return new TrellisError(
      'OutOfMemory',
      `${what}: ${size} bytes (${formatBytes(size)}) do not fit${short}; ${formatBytes(this.usedBytes)} of the ` +
        `${formatBytes(this.policy.limit)} limit in use, largest free block ${formatBytes(free)}`,
    );
  }
}
