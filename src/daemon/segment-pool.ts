/**
 * The daemon's shared memory: segments (native memfds) and one allocator per segment. Blocks
 * are placed by first fit over segments, best fit inside one; the memory policy decides when to
 * reserve a new segment and which empty ones to give back.
 */
import { TrellisError } from '../errors';
import { native, type NativeAllocator, type NativeSegment } from '../native';
import { daemonLog } from './log';
import { MemoryPolicy, roundUp, type Room, type SegmentUsage } from './memory-policy';
import { SegmentMemory } from './segment-memory';
import { formatBytes } from './sizes';

/** Blocks are this many bytes apart (native/allocator.h kBlobAlignment). */
const BLOCK_ALIGNMENT = 64;
/**
 * A taken spare is replaced after this pause: reserving new memory (seconds per GiB here) while
 * the writer fills the spare it took slowed a fresh process's 1 GiB put from 233 to 434 ms
 * (medians of 6 new daemons each, alternating).
 */
const SPARE_REPLACE_DELAY_MS = 1000;

export interface Placement {
  segment: number;
  offset: number;
}

/** The spare segment (MemoryPolicy.spareBytes): reserved, in no client's hands, holding no block. */
interface SpareSegment {
  id: number;
  size: number;
  memory: NativeSegment;
}

interface PooledSegment extends SegmentUsage {
  memory: NativeSegment;
  allocator: NativeAllocator;
  /** A spare a blob took (takeSpare): counted as the spare in use until it is released. */
  wasSpare?: true;
}

/** The spare segment's bytes by state (spareStates): what /metrics shows of --spare-segment. */
export interface SpareStates {
  /** Being reserved on a worker thread (counted as reserved already). */
  reserving: number;
  /** Reserved and faulted in, for the next blob that needs a new segment. */
  ready: number;
  /** Spares blobs took, now segments of the pool, until they are released. */
  inUse: number;
}

export class SegmentPool {
  private readonly segments = new Map<number, PooledSegment>();
  private nextSegmentId = 1;
  private reservedBytes = 0;
  private usedBytes = 0;
  private closed = false;
  /** A segment being reserved on a worker thread (reserveAhead), which other requests wait for too. */
  private reserving?: Promise<void>;
  /** Counted in reservedBytes, not in count; see MemoryPolicy.spareBytes. */
  private spare?: SpareSegment;
  /** The spare being reserved on a worker thread (its bytes counted in reservedBytes meanwhile). */
  private spareReserving?: Promise<void>;
  /** The pause after a spare was taken (SPARE_REPLACE_DELAY_MS): no new spare before it ends. */
  private spareReplacing?: NodeJS.Timeout;
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
  /** Bytes of the spare segment ready to be taken; 0 without one (see MemoryPolicy.spareBytes). */
  get spareReady(): number {
    return this.spare?.size ?? 0;
  }
  get count(): number {
    return this.segments.size;
  }
  get spareStates(): SpareStates {
    let inUse = 0;
    for (const segment of this.segments.values()) if (segment.wasSpare) inUse += segment.size;
    return { reserving: this.spareReserving ? this.policy.spareBytes : 0, ready: this.spareReady, inUse };
  }
  /** What `reserved` can grow to now: the limit, or less when the machine holds less (a live reading). */
  get capacity(): number {
    return this.policy.capacity(this.reservedBytes);
  }

  /** The ids of the segments in use now (the spare, not yet taken, is none of them). */
  get segmentIds(): number[] {
    return [...this.segments.keys()];
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
    // Every put that is a request allocates: the best segment is found without making the list.
    const best = this.bestFit(size);
    if (best === undefined) return this.allocateInNew(size, what);
    const placement = this.allocateIn(best, size);
    if (placement) return placement;
    for (const segment of this.candidates(size)) {
      const placement = segment === best ? undefined : this.allocateIn(segment, size);
      if (placement) return placement;
    }
    return this.allocateInNew(size, what);
  }

  /** A new segment (or the spare) for a blob no segment of the pool has room for. Errors: OutOfMemory. */
  private allocateInNew(size: number, what: string): Placement {
    const segment = this.takeSpare(size) ?? this.reserveSegment(size, what);
    const placement = this.allocateIn(segment, size);
    if (!placement) throw this.outOfMemory(size, what);
    return placement;
  }

  /**
   * Undefined when a segment the pool has could take each of `sizes` (the common case costs no
   * promise); otherwise a promise that resolves once segments for them are reserved off the
   * event loop: the fallocate of a large segment takes 0.1 to 0.7 s on this machine kind, and on
   * the event loop it stalled every other client's requests that long. It never rejects: when a
   * reservation fails or the room is taken meanwhile, allocate() reserves on the spot or answers
   * OutOfMemory, as it did before. One reservation runs at a time: a request that comes during
   * another's (or the warm-up) waits for it, then has its own sizes reserved; allocating them on
   * the spot instead could find the room held by the spare being reserved meanwhile.
   */
  reserveAhead(sizes: readonly number[]): Promise<void> | undefined {
    if (this.reserving) return this.reserving.then(() => this.reserveAhead(sizes));
    if (this.firstWithoutRoom(sizes) === undefined) return undefined;
    const reserveAll = async () => {
      // One segment at a time: a standard segment reserved for one size may take the next ones too.
      for (let round = 0; round < sizes.length; round++) {
        const size = this.firstWithoutRoom(sizes);
        if (size === undefined || !(await this.reserveOffThread(size))) return;
      }
    };
    const reserving = reserveAll().finally(() => {
      this.reserving = undefined;
    });
    this.reserving = reserving;
    return reserving;
  }

  /**
   * The first of `sizes` that would not fit once the ones before it are placed as allocate()
   * places them (smallest fitting segment first), or undefined when all fit. Each placement is
   * taken from the segment's largest free block, which may overstate what it uses up, never
   * understate: the sizes of one request (a DataFrame's buffers) must not be counted into the
   * same room, or the ones that find none are placed by allocate() on the event loop, in a
   * segment without huge pages (a 1 GiB table's second column then scanned 17x slower).
   */
  private firstWithoutRoom(sizes: readonly number[]): number | undefined {
    const room = [...this.segments.values()]
      .sort((a, b) => a.size - b.size || a.id - b.id)
      .map((segment) => ({ largestFree: segment.allocator.largestFree }));
    for (const size of sizes) {
      const fitting = room.find((segment) => segment.largestFree >= size);
      if (!fitting) return size;
      fitting.largestFree -= roundUp(Math.max(size, 1), BLOCK_ALIGNMENT);
    }
    return undefined;
  }

  /** True when a segment for `size` was reserved and added; false leaves it to allocate(). */
  private async reserveOffThread(size: number): Promise<boolean> {
    if (this.policy.spareTakes(size)) {
      // A spare on its way is sooner than a segment of our own, and does not hold the room twice.
      if (!this.spare && this.spareReserving) await this.spareReserving;
      if (this.takeSpare(size)) return true;
    }
    let segmentSize: number;
    try {
      segmentSize = this.planSegment(size, 'reserve ahead').segmentSize;
    } catch {
      // A spare on its way holds its room already; once it is ready, planning gives that room back.
      if (!this.spareReserving) return false;
      await this.spareReserving;
      try {
        segmentSize = this.planSegment(size, 'reserve ahead').segmentSize;
      } catch {
        return false;
      }
    }
    const id = this.nextSegmentId++;
    // Counted as reserved from now, so that no other reservation is planned into the same room.
    this.reservedBytes += segmentSize;
    let memory: NativeSegment;
    try {
      memory = await native.Segment.reserve(segmentSize, `trellis-segment-${id}`, this.shmDir);
    } catch {
      this.reservedBytes -= segmentSize;
      return false;
    }
    this.reservedBytes -= segmentSize;
    if (this.closed) {
      memory.release();
      return false;
    }
    this.addSegment(id, segmentSize, memory);
    return true;
  }

  /**
   * Segments that could take `size`, best first: the smallest that fits, so a small blob does
   * not land in (and pin) an idle dedicated segment that a large blob will want back.
   */
  private candidates(size: number): PooledSegment[] {
    const fitting: PooledSegment[] = [];
    for (const segment of this.segments.values()) if (segment.allocator.largestFree >= size) fitting.push(segment);
    return fitting.length > 1 ? fitting.sort(bySizeThenId) : fitting;
  }

  /** The first of candidates(size), or undefined. */
  private bestFit(size: number): PooledSegment | undefined {
    let best: PooledSegment | undefined;
    for (const segment of this.segments.values()) {
      if (segment.allocator.largestFree < size) continue;
      if (best === undefined || bySizeThenId(segment, best) < 0) best = segment;
    }
    return best;
  }

  /**
   * Starts reserving the first standard segment, on the worker thread with huge pages, so the
   * first put neither pays for it nor gets 4 KiB pages: a fresh process filling 256 MiB of 4 KiB
   * pages took 1.4 s here (a trap per page-table entry under shadow paging), 2 MiB pages ~40 ms.
   * Requests that allocate wait for it (untilWarm). A machine that cannot hold even that does not
   * stop the daemon from starting: puts answer OutOfMemory.
   */
  warmUp(): void {
    if (this.segments.size > 0) return;
    const warming = this.reserveAhead([1]);
    // The spare after the first segment, which the first put waits for: that put need not wait for both.
    if (warming) void warming.then(() => this.replenishSpare());
    else this.replenishSpare();
  }

  /**
   * The spare as a segment of the pool for a blob of `size` bytes, when the policy lets that blob
   * take it; a new spare is reserved in the background after a pause (SPARE_REPLACE_DELAY_MS).
   * Undefined when there is none ready.
   */
  private takeSpare(size: number): PooledSegment | undefined {
    const spare = this.spare;
    if (!spare || !this.policy.spareTakes(size)) return undefined;
    this.spare = undefined;
    // addSegment counts its size again.
    this.reservedBytes -= spare.size;
    const segment = this.addSegment(spare.id, spare.size, spare.memory);
    segment.wasSpare = true;
    daemonLog().debug({ segment: spare.id, bytes: spare.size, blob: size }, 'spare segment taken');
    clearTimeout(this.spareReplacing);
    this.spareReplacing = setTimeout(() => {
      this.spareReplacing = undefined;
      this.replenishSpare();
    }, SPARE_REPLACE_DELAY_MS).unref();
    return segment;
  }

  /**
   * Reserves a spare on the worker thread (with huge pages, faulted in by the reservation) when
   * there is none and the policy allows one now, and not during the pause after one was taken (an
   * idle tick then waits too); a refusal or failure is tried again at the next idle tick. Its bytes
   * count as reserved from the start, as reserveOffThread's do.
   */
  private replenishSpare(): void {
    const size = this.policy.spareBytes;
    if (size === 0 || this.spare || this.spareReserving || this.spareReplacing || this.closed) return;
    if (!this.policy.mayReserveSpare(this.reservedBytes, this.policy.machineRoom().bytes)) return;
    const id = this.nextSegmentId++;
    this.reservedBytes += size;
    const reserving = native.Segment.reserve(size, `trellis-segment-${id}`, this.shmDir).then(
      (memory) => {
        if (this.closed) memory.release();
        else this.spare = { id, size, memory };
      },
      () => {
        if (!this.closed) this.reservedBytes -= size;
      },
    );
    this.spareReserving = reserving.finally(() => {
      this.spareReserving = undefined;
    });
  }

  /** Gives the spare back (memory pressure, or its room is needed); true when there was one. */
  private dropSpare(why: string): boolean {
    const spare = this.spare;
    if (!spare) return false;
    this.spare = undefined;
    spare.memory.release();
    this.reservedBytes -= spare.size;
    daemonLog().debug({ segment: spare.id, bytes: spare.size }, `spare segment given back: ${why}`);
    return true;
  }

  /**
   * The warm-up (or another reservation) while the pool has no segment at all: allocating now
   * would reserve a second one on the event loop, with 4 KiB pages. Undefined otherwise.
   */
  untilWarm(): Promise<void> | undefined {
    return this.segments.size === 0 ? this.reserving : undefined;
  }

  /**
   * A reservation under way (the spare's, or one reserveAhead started), whose bytes count as
   * reserved until it ends: an allocation that found no room may find some then (a spare that is
   * ready gives its room up). Undefined when none runs.
   */
  untilReserved(): Promise<void> | undefined {
    return this.spareReserving ?? this.reserving;
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

  /**
   * Cuts the block at `placement` in two, each freed on its own: its first `length` bytes (the
   * block of an object in a put ring's arena) and the rest, returned; undefined when the front
   * would be the whole block (or there is no such block). Used bytes do not change.
   */
  split(placement: Placement, length: number): Placement | undefined {
    const segment = this.segments.get(placement.segment);
    const rest = segment ? segment.allocator.split(placement.offset, length) : -1;
    return rest < 0 ? undefined : { segment: placement.segment, offset: rest };
  }

  close(): void {
    this.closed = true;
    clearInterval(this.idleTimer);
    clearTimeout(this.spareReplacing);
    this.spare?.memory.close();
    this.spare = undefined;
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
    const { segmentSize } = this.planSegment(size, what);
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
    return this.addSegment(id, segmentSize, memory);
  }

  /**
   * The size of a new segment for `size` bytes, making room first by releasing empty segments
   * when the policy says so. Errors: OutOfMemory.
   */
  private planSegment(size: number, what: string): { segmentSize: number } {
    // One reading of the machine per new segment (not per blob): what it can hold right now.
    let machine = this.policy.machineRoom();
    let segmentSize = this.policy.segmentSizeFor(size, this.reservedBytes, machine.bytes);
    if (segmentSize === 0 && this.dropSpare(`its room is needed for a blob of ${formatBytes(size)}`)) {
      machine = this.policy.machineRoom();
      segmentSize = this.policy.segmentSizeFor(size, this.reservedBytes, machine.bytes);
    }
    if (segmentSize === 0) {
      const wanted = this.policy.segmentSizeFor(size, 0);
      const victims = this.policy.releaseToFit([...this.segments.values()], this.reservedBytes, wanted, machine.bytes);
      victims.forEach((id) => this.release(id));
      if (victims.length > 0) machine = this.policy.machineRoom();
      segmentSize = this.policy.segmentSizeFor(size, this.reservedBytes, machine.bytes);
    }
    if (segmentSize === 0) throw this.outOfMemory(size, what, machine);
    return { segmentSize };
  }

  private addSegment(id: number, segmentSize: number, memory: NativeSegment): PooledSegment {
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
    // The spare goes first under pressure (nobody uses it), and comes back once there is room again.
    if (this.spare && !this.policy.keepSpare(this.policy.machineRoom().bytes))
      this.dropSpare('the machine is short of memory');
    else this.replenishSpare();
    const segments = [...this.segments.values()];
    if (!segments.some((segment) => segment.used === 0)) return;
    // One reading of the machine per tick, and only with an empty segment to decide about.
    const room = this.policy.machineRoom().bytes;
    for (const id of this.policy.idle(segments, Date.now(), room)) this.release(id);
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

/** The smallest segment first (then the oldest), as allocate tries them. */
function bySizeThenId(a: PooledSegment, b: PooledSegment): number {
  return a.size - b.size || a.id - b.id;
}
