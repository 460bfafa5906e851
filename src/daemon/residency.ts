/**
 * Which sealed blobs are in shared memory, and moving them in and out: when a new blob would go
 * over --size, the least recently used blobs that no client holds go to disk (spilled, or simply
 * dropped when they are persisted and already on disk) and their memory is freed; a get of such
 * a blob loads it back, under the same id, before it is answered.
 *
 * The event loop never waits on the disk: spills and loads run on libuv's thread pool, and only
 * the requests that need those bytes wait for them. One spill runs at a time (two would pick
 * the same victims); a load that many requests need runs once.
 *
 * The table decides what may go (evictable: resident, sealed, unheld, not a stream chunk); this
 * file moves the bytes; memory-policy.ts sizes the segments.
 */
import { isTrellisError, TrellisError } from '../errors';
import type { BlobLocation } from '../protocol/messages';
import { daemonLog } from './log';
import type { BlobBacking, ObjectTable, SealExtras, StoredObject } from './object-table';
import type { Placement, SegmentPool } from './segment-pool';
import type { ClientSession } from './session';
import { formatBytes } from './sizes';
import { readWhole, type SpillDir } from './spill/spill-dir';

/** Reads persisted bytes back, checking them (durable/). */
export interface DurableBytes {
  /** Errors: IOError naming the object when the file is missing, short or changed. */
  read(id: string, backing: BlobBacking, into: Uint8Array): Promise<void>;
}

/** Rounds of spilling a request may ask for before it is OutOfMemory (fragmentation can need more than one). */
const MAX_ROOM_ROUNDS = 4;

export class Residency {
  private readonly loads = new Map<string, Promise<void>>();
  /** The spill running now; the next waits for it. */
  private spilling: Promise<void> = Promise.resolve();

  constructor(
    private readonly table: ObjectTable,
    private readonly pool: SegmentPool,
    private readonly spill: SpillDir | undefined,
    private readonly durable: DurableBytes | undefined,
  ) {}

  /** Whether blobs can leave memory at all (a spill dir, or persisted bytes to drop). */
  /**
   * Frees deleted blobs whose read-index holds were dropped without the daemon being told (the
   * read index's sweep); true when it freed any. Set by the server when there is an index.
   */
  reclaimHeld?: () => boolean;

  private get canMakeRoom(): boolean {
    return this.spill !== undefined || this.durable !== undefined;
  }

  /**
   * Allocates every blob or none, spilling others first when they would not fit.
   * Errors: InvalidArgument, OutOfMemory (what clients hold leaves no room), IOError.
   */
  createBlobs(session: ClientSession, sizes: number[], typename?: string): BlobLocation[] | Promise<BlobLocation[]> {
    const warming = this.pool.untilWarm();
    if (warming) return warming.then(() => this.createBlobs(session, sizes, typename));
    return this.withRoom(
      () => this.table.createBlobs(session, sizes, typename),
      sizes.reduce((a, b) => a + b, 0),
    );
  }

  /** Sealed blobs holding `datas` (ObjectTable.createSealedBlobs), spilling first when that makes room. */
  createSealedBlobs(
    session: ClientSession,
    datas: readonly Uint8Array[],
    extras?: readonly SealExtras[],
  ): string[] | Promise<string[]> {
    const warming = this.pool.untilWarm();
    if (warming) return warming.then(() => this.createSealedBlobs(session, datas, extras));
    let bytes = 0;
    for (let i = 0; i < datas.length; i++) bytes += datas[i].byteLength;
    return this.withRoom(() => this.table.createSealedBlobs(session, datas, extras), bytes);
  }

  /**
   * A block of the pool, spilling first when that makes room (a put ring's). One that needs a new
   * segment waits for it off the event loop, as createBlobs does, and so does one that comes while
   * the first segment is being reserved (a client's grant at connect, as the daemon starts): on
   * the spot, it would reserve a second segment, on the event loop. Errors: OutOfMemory.
   */
  allocate(size: number, what: string): Placement | Promise<Placement> {
    const reserving = this.pool.reserveAhead([size]);
    if (reserving) return reserving.then(() => this.withRoom(() => this.pool.allocate(size, what), size));
    return this.withRoom(() => this.pool.allocate(size, what), size);
  }

  /**
   * Undefined when every blob is in memory (the common case costs no promise); otherwise a
   * promise that they are, loading those that are not. Errors: IOError, OutOfMemory.
   */
  whenResident(blobs: readonly StoredObject[]): Promise<void> | undefined {
    let pending: Array<Promise<void>> | undefined;
    for (const blob of blobs) {
      if (blob.placement) continue;
      (pending ??= []).push(this.load(blob));
    }
    // Used now: the last that a spill picks while the others load.
    this.table.touch(blobs);
    return pending && Promise.all(pending).then(() => undefined);
  }

  /**
   * Runs `attempt` (which holds what it got synchronously), making sure `blobs` are resident
   * first: a load can spill another blob of the same tree, so it checks again, a few times.
   */
  withResident<T>(blobsOf: () => readonly StoredObject[], attempt: () => T): T | Promise<T> {
    const blobs = blobsOf();
    const waiting = this.whenResident(blobs);
    if (!waiting) return attempt();
    const retry = async (round: number): Promise<T> => {
      await waiting;
      for (;;) {
        const again = this.whenResident(blobsOf());
        if (!again) return attempt();
        if (++round > MAX_ROOM_ROUNDS) {
          throw new TrellisError(
            'OutOfMemory',
            'cannot keep every blob of the object in memory at once: the limit is too small for it',
          );
        }
        await again;
      }
    };
    return retry(1);
  }

  /** The blob's bytes are durable on disk now: it can leave memory without being written (again). */
  keptOnDisk(blob: StoredObject, backing: BlobBacking): void {
    this.forget(blob);
    blob.backing = backing;
  }

  /** The spill files of a deleted blob go with it. */
  forget(object: StoredObject): void {
    if (object.backing && !object.backing.durable) this.spill?.remove(object.backing);
  }

  private load(blob: StoredObject): Promise<void> {
    let loading = this.loads.get(blob.id);
    if (!loading) {
      loading = this.loadOnce(blob).finally(() => this.loads.delete(blob.id));
      this.loads.set(blob.id, loading);
    }
    return loading;
  }

  private async loadOnce(blob: StoredObject): Promise<void> {
    const backing = blob.backing;
    if (!backing) throw new TrellisError('IOError', `blob ${blob.id} is neither in memory nor on disk`);
    const placement = await this.withRoom(() => this.pool.allocate(blob.nbytes, `load ${blob.id}`), blob.nbytes);
    try {
      const location = { id: blob.id, size: blob.nbytes, segment: placement.segment, offset: placement.offset };
      const view = this.pool.memory.openWritable(location);
      try {
        if (backing.durable) await this.durable!.read(blob.id, backing, view);
        else await readWhole(backing.path, view, `spilled blob ${blob.id}`);
      } finally {
        this.pool.memory.closeWritable(view);
      }
    } catch (error) {
      this.pool.free(placement);
      throw error;
    }
    if (blob.deleted) {
      this.pool.free(placement);
      throw new TrellisError('ObjectNotFound', `object ${blob.id} was deleted while it was loaded`);
    }
    this.table.reinstate(blob, placement);
  }

  /**
   * Runs `allocate`; when it is OutOfMemory, first waits for a segment being reserved (its room
   * is counted as taken meanwhile: a put-ring arena or a load that came while the spare was being
   * reserved failed, or spilled, for room the spare gives up once ready), then frees what only
   * waited for read-index views already let go (`reclaimHeld`), then, when blobs can leave memory,
   * spills and tries again.
   */
  private withRoom<T>(allocate: () => T, bytes: number, waited = false): T | Promise<T> {
    let failed: unknown;
    try {
      return allocate();
    } catch (error) {
      failed = error;
    }
    // A segment being reserved (the spare, most often) holds its room until it is done; then a
    // spare gives that room up to a block that needs it. Once: another reservation may follow.
    const reserving = !waited && isTrellisError(failed, 'OutOfMemory') ? this.pool.untilReserved() : undefined;
    if (reserving) return reserving.then(() => this.withRoom(allocate, bytes, true));
    if (isTrellisError(failed, 'OutOfMemory') && this.reclaimHeld?.()) {
      try {
        return allocate();
      } catch (error) {
        failed = error;
      }
    }
    // More than the whole limit cannot be helped by moving anything out.
    if (!this.canMakeRoom || !isTrellisError(failed, 'OutOfMemory') || bytes > this.pool.policy.limit) throw failed;
    const retry = async (): Promise<T> => {
      for (let round = 1; ; round++) {
        const freed = await this.makeRoom(bytes * round);
        try {
          return allocate();
        } catch (error) {
          if (!isTrellisError(error, 'OutOfMemory') || (freed === 0 && round > 1) || round >= MAX_ROOM_ROUNDS) {
            throw roomError(error, bytes, this.pool);
          }
        }
      }
    };
    return retry();
  }

  /** Frees at least `bytes` of unheld blobs' memory if it can; one spill at a time. Returns what it freed. */
  private makeRoom(bytes: number): Promise<number> {
    const run = this.spilling.then(() => this.spillFor(bytes));
    this.spilling = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async spillFor(bytes: number): Promise<number> {
    const victims: StoredObject[] = [];
    let chosen = 0;
    for (const blob of this.table.evictable()) {
      if (chosen >= bytes) break;
      victims.push(blob);
      chosen += blob.nbytes;
    }
    let freed = 0;
    let spilled = 0;
    for (const blob of victims) {
      let backing = blob.backing;
      // Sealed bytes never change: a copy on disk from before is still good.
      if (!backing) {
        if (!this.spill) continue;
        try {
          backing = await this.spill.write(blob.id, this.pool.memory.read(locationOf(blob), 0, blob.nbytes));
        } catch (error) {
          daemonLog().warn({ object: blob.id, bytes: blob.nbytes }, `spill failed: ${(error as Error).message}`);
          // A full or broken disk: what was freed so far stands; the request may still fit.
          if (freed === 0) throw error;
          break;
        }
      }
      // A client may have taken it, or deleted it, while it was written.
      if (blob.placement && blob.holdersIfAny.size === 0 && !blob.deleted && this.table.evict(blob, backing)) {
        freed += blob.nbytes;
        spilled++;
      } else if (!blob.backing) {
        this.spill?.remove(backing);
      }
    }
    if (spilled > 0)
      daemonLog().info({ objects: spilled, bytes: freed, asked: bytes }, `spilled ${formatBytes(freed)} to make room`);
    return freed;
  }
}

function locationOf(blob: StoredObject): BlobLocation {
  const placement = blob.placement as Placement;
  return { id: blob.id, size: blob.nbytes, segment: placement.segment, offset: placement.offset };
}

function roomError(cause: unknown, bytes: number, pool: SegmentPool): TrellisError {
  const message =
    `no room for ${formatBytes(bytes)}: ${formatBytes(pool.used)} of the ${formatBytes(pool.policy.limit)} limit ` +
    'is held by clients, unsealed or being read, and nothing else can leave memory';
  return new TrellisError('OutOfMemory', message, { cause });
}
