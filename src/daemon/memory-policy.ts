/**
 * Decides how shared memory is reserved; the segment pool asks, the allocator only allocates.
 *
 * Segments are created on demand, so a daemon with a 2 GiB limit reserves nothing until it is
 * used. Ordinary blobs share standard segments (an eighth of the limit, between 4 and 256 MiB);
 * a blob larger than that gets a segment of its own. An empty segment is kept for reuse (a
 * fresh segment costs a fallocate and every client's page faults) until it has been idle for
 * `idleReleaseMs`, or until its room is needed for a segment of another size.
 *
 * Past that, the most recently emptied segments, up to a quarter of the limit in total, are
 * retained for up to `retainMs` (ten minutes): their memory is touched and on 2 MiB pages, and
 * new memory is dear. On a VM whose balloon reports free pages to the hypervisor (as here), a
 * punched-out segment's pages go back to the host within seconds, and a new 1 GiB segment then
 * costs 1 to 5 s to reserve, where a fresh process's first put into a retained one takes
 * 0.15-0.56 s (bench core, docs/troubleshooting.md). Retained segments count against `--size` as
 * before (so they are given back first when a new segment needs their room), and are given back
 * when the machine's room falls below what they hold.
 *
 * `--size` stays the ceiling, but the machine may hold less (less RAM left, a small tmpfs, a
 * container's cgroup limit), and what it holds changes while the daemon runs. So the limit is
 * not clamped once at start: each new segment is checked against what the machine can hold at
 * that moment, less a safety margin, and refused with OutOfMemory well before the kernel's OOM
 * killer would act. Only the standard segment size is taken from the machine at start, so that
 * a 64 MiB /dev/shm does not get 256 MiB standard segments it can never hold.
 */
import { TrellisError } from '../errors';
import type { CapacityProbe, CapacityReading } from './machine-capacity';
import { formatBytes } from './sizes';

const MiB = 1024 * 1024;
export const MIN_STANDARD_SEGMENT = 4 * MiB;
export const MAX_STANDARD_SEGMENT = 256 * MiB;
/** Node refuses external ArrayBuffers of 4 GiB and more. */
export const MAX_SEGMENT_BYTES = 4 * 1024 * MiB - 2 * MiB;
/** Large segments are rounded to huge-page size. */
export const SEGMENT_GRANULE = 2 * MiB;
export const DEFAULT_IDLE_RELEASE_MS = 30_000;
/** How long the retained empty segments (see the top) are kept past idleReleaseMs at most. */
export const DEFAULT_RETAIN_MS = 10 * 60_000;
/** The retained empty segments hold at most this share of the limit. */
export const RETAIN_SHARE = 0.25;
/**
 * Left free for everything else (clients' own heaps, the daemon's, the kernel) when reserving:
 * this share of RAM (of a cgroup's limit), and at least the floor below.
 */
export const SAFETY_MARGIN_SHARE = 0.05;
export const MIN_RAM_MARGIN = 256 * MiB;
export const MIN_CGROUP_MARGIN = 64 * MiB;

/** How many more bytes may be reserved, and what bounds it (for messages). */
export interface Room {
  bytes: number;
  bound: 'ram' | 'shm' | 'cgroup' | 'none';
  why: string;
}

export interface SegmentUsage {
  id: number;
  size: number;
  used: number;
  idleSince: number;
}

const NO_MACHINE_BOUND: Room = { bytes: Infinity, bound: 'none', why: 'no machine bound' };

export class MemoryPolicy {
  readonly standardSegmentSize: number;
  /** Empty segments idle past idleReleaseMs are kept up to this many bytes in total (see the top). */
  readonly retainBytes: number;
  /**
   * The spare segment (--spare-segment; 0: none): reserved and faulted in ahead, so that the first
   * blob that needs a new segment of up to this size finds one at once instead of waiting for new
   * memory (1 to 5 s per GiB on a VM whose balloon hands pages back, see the top). It counts
   * toward --size like any segment.
   */
  readonly spareBytes: number;
  /** What the machine held when the daemon started; absent without a probe. */
  private readonly atStart?: CapacityReading;

  /** `machine`: reads what this machine can hold now; without one, only `limit` bounds reservations. */
  constructor(
    readonly limit: number,
    readonly idleReleaseMs = DEFAULT_IDLE_RELEASE_MS,
    private readonly machine?: CapacityProbe,
    readonly retainMs = DEFAULT_RETAIN_MS,
    spareBytes = 0,
  ) {
    this.retainBytes = Math.floor(limit * RETAIN_SHARE);
    this.atStart = machine?.read();
    const holdable = this.atStart ? Math.min(limit, machineRoomOf(this.atStart).bytes) : limit;
    const eighth = Math.floor(holdable / 8 / MiB) * MiB;
    this.standardSegmentSize = Math.min(limit, Math.max(MIN_STANDARD_SEGMENT, Math.min(MAX_STANDARD_SEGMENT, eighth)));
    this.spareBytes = checkSpareBytes(spareBytes, limit);
  }

  /**
   * Whether a blob of `size` bytes that finds no room may take the spare: one that needs a
   * segment of its own no larger than the spare, or (a spare no larger than a standard segment)
   * any blob, which then gets the spare as its standard segment. A small blob never takes a
   * larger spare: it would pin the memory kept for a large one; nor a blob larger than the spare
   * (one smaller than a standard segment), which it cannot hold.
   */
  spareTakes(size: number): boolean {
    if (this.spareBytes === 0 || size > this.spareBytes) return false;
    if (size <= this.standardSegmentSize) return this.spareBytes <= this.standardSegmentSize;
    return roundUp(size, SEGMENT_GRANULE) <= this.spareBytes;
  }

  /**
   * Whether a spare may be reserved now, with `room` from machineRoom(): it fits under --size
   * after `reserved`, and leaves the machine at least its own size of room again. Under that
   * (keepSpare), it is given back; the gap between the two keeps it from coming and going.
   */
  mayReserveSpare(reserved: number, room: number): boolean {
    return this.spareBytes > 0 && reserved + this.spareBytes <= this.limit && room >= 2 * this.spareBytes;
  }

  /** Whether a spare segment already reserved stays, with `room` from machineRoom(). */
  keepSpare(room: number): boolean {
    return room >= this.spareBytes;
  }

  /** What the machine lets the daemon reserve beyond what it has now (a live reading). */
  machineRoom(): Room {
    return this.machine ? machineRoomOf(this.machine.read()) : NO_MACHINE_BOUND;
  }

  /** What `reserved` can grow to now: `limit`, or less when the machine holds less. */
  capacity(reserved: number): number {
    return reserved + Math.min(this.limit - reserved, this.machineRoom().bytes);
  }

  /**
   * One line for stderr when `--size` is more than the machine can hold at start, naming each
   * bound; undefined when it is not.
   */
  startWarning(): string | undefined {
    if (!this.atStart) return undefined;
    const room = machineRoomOf(this.atStart);
    if (room.bytes >= this.limit) return undefined;
    const { memAvailable, shm, cgroup } = this.atStart;
    const bounds = [
      `MemAvailable ${Number.isFinite(memAvailable) ? formatBytes(memAvailable) : 'unknown'}`,
      shm ? `${shm.dir} free ${formatBytes(shm.free)} of ${formatBytes(shm.size)}` : 'memfd segments',
      cgroup
        ? `cgroup limit ${formatBytes(cgroup.limit)} with ${formatBytes(cgroup.usage)} in use`
        : 'cgroup limit none',
    ];
    const hint =
      shm && room.bound === 'shm'
        ? `; to hold more, enlarge ${shm.dir} (docker run --shm-size, mount -o remount,size=) or pass --shm-dir`
        : '';
    return (
      `--size ${formatBytes(this.limit)} exceeds what this machine can hold now (${bounds.join(', ')}): ` +
      `OutOfMemory will be answered past about ${formatBytes(room.bytes)} (${room.why})${hint}`
    );
  }

  /**
   * The size of a new segment to hold a blob of `size` bytes, or 0 when none fits in the room
   * `--size` leaves after `reserved` bytes, nor in `machineRoom` (from machineRoom()).
   * Errors: OutOfMemory (a blob larger than any segment).
   */
  segmentSizeFor(size: number, reserved: number, machineRoom = Infinity): number {
    if (size > MAX_SEGMENT_BYTES) {
      throw new TrellisError(
        'OutOfMemory',
        `a blob of ${size} bytes (${formatBytes(size)}) is larger than the largest segment, ${formatBytes(MAX_SEGMENT_BYTES)}`,
      );
    }
    const room = Math.min(this.limit - reserved, machineRoom);
    const wanted = size <= this.standardSegmentSize ? this.standardSegmentSize : roundUp(size, SEGMENT_GRANULE);
    if (wanted <= room) return wanted;
    // Near the limit, a segment just big enough still fits where a standard one does not.
    const tight = roundUp(Math.max(size, 1), 64 * 1024);
    return tight <= room ? tight : 0;
  }

  /**
   * Empty segments to release, oldest first, so that `needed` bytes can be reserved. A released
   * segment's pages are punched out, so it gives its size back to the machine's room too.
   */
  releaseToFit(segments: SegmentUsage[], reserved: number, needed: number, machineRoom = Infinity): number[] {
    const chosen: number[] = [];
    let room = Math.min(this.limit - reserved, machineRoom);
    for (const segment of emptiest(segments)) {
      if (room >= needed) break;
      chosen.push(segment.id);
      room += segment.size;
    }
    return room >= needed ? chosen : [];
  }

  /**
   * Empty segments to release now: idle past idleReleaseMs and not retained. The most recently
   * emptied are retained, up to retainBytes in total and for retainMs at most, unless
   * `machineRoom` (from machineRoom()) is less than they would hold.
   */
  idle(segments: SegmentUsage[], now: number, machineRoom = Infinity): number[] {
    const released: number[] = [];
    let retained = 0;
    const idle = segments.filter((s) => s.used === 0 && now - s.idleSince >= this.idleReleaseMs);
    for (const segment of idle.sort((a, b) => b.idleSince - a.idleSince || a.id - b.id)) {
      const keep =
        now - segment.idleSince < this.retainMs &&
        retained + segment.size <= this.retainBytes &&
        retained + segment.size <= machineRoom;
      if (keep) retained += segment.size;
      else released.push(segment.id);
    }
    return released;
  }
}

/**
 * How many more bytes this machine lets the daemon reserve, from a reading: the least of RAM
 * left less a margin, the tmpfs's free space, and a cgroup's room less a margin.
 */
export function machineRoomOf(reading: CapacityReading): Room {
  const bounds: Room[] = [];
  if (Number.isFinite(reading.memAvailable)) {
    const total = Number.isFinite(reading.memTotal) ? reading.memTotal : reading.memAvailable;
    const margin = Math.max(Math.floor(SAFETY_MARGIN_SHARE * total), MIN_RAM_MARGIN);
    bounds.push({
      bytes: reading.memAvailable - margin,
      bound: 'ram',
      why: `MemAvailable ${formatBytes(reading.memAvailable)} less a ${formatBytes(margin)} safety margin`,
    });
  }
  const { shm, cgroup } = reading;
  if (shm) {
    const why = `${shm.dir} has ${formatBytes(shm.free)} free of ${formatBytes(shm.size)}`;
    bounds.push({ bytes: shm.free, bound: 'shm', why });
  }
  if (cgroup) {
    const margin = Math.max(Math.floor(SAFETY_MARGIN_SHARE * cgroup.limit), MIN_CGROUP_MARGIN);
    bounds.push({
      bytes: cgroup.limit - cgroup.usage - margin,
      bound: 'cgroup',
      why:
        `memory cgroup ${cgroup.dir} has ${formatBytes(cgroup.usage)} of its ${formatBytes(cgroup.limit)} limit ` +
        `in use, less a ${formatBytes(margin)} safety margin`,
    });
  }
  let least = NO_MACHINE_BOUND;
  for (const bound of bounds) if (bound.bytes < least.bytes) least = bound;
  return { ...least, bytes: Math.max(0, Math.floor(least.bytes)) };
}

/** The spare's size rounded to huge pages; 0 for none. Errors: InvalidArgument. */
function checkSpareBytes(bytes: number, limit: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new TrellisError('InvalidArgument', `--spare-segment must be a size such as 1GiB or 0, got ${bytes}`);
  }
  const rounded = roundUp(bytes, SEGMENT_GRANULE);
  if (rounded > Math.min(limit, MAX_SEGMENT_BYTES)) {
    throw new TrellisError(
      'InvalidArgument',
      `--spare-segment ${formatBytes(bytes)} is larger than --size ${formatBytes(limit)} or the largest segment ` +
        `(${formatBytes(MAX_SEGMENT_BYTES)})`,
    );
  }
  return rounded;
}

function emptiest(segments: SegmentUsage[]): SegmentUsage[] {
  return segments.filter((s) => s.used === 0).sort((a, b) => a.idleSince - b.idleSince);
}

export function roundUp(value: number, granule: number): number {
  return Math.ceil(value / granule) * granule;
}
