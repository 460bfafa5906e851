/**
 * The daemon's half of the put rings (layout in protocol/put-ring-layout.ts, the argument for
 * their correctness in docs/put-ring.md): a local client writes a small bare put's bytes into an
 * arena of the pool granted to it, names the object with an id from a block granted with the
 * arena, appends a record to its ring and resolves the put at once; the daemon drains the ring
 * and registers the objects.
 *
 * When the daemon drains: every ring before it handles any request (so whatever a request can
 * observe, any put resolved before the request was sent is already there: the client's own get,
 * or another process's get of an id the writer passed it), on a short timer while a ring has
 * been busy, when a client rings the doorbell (a drainPutRing request, sent only while the ring
 * is armed, that is while the daemon has gone idle), and when the client disconnects.
 *
 * Memory: an arena is taken from the pool when granted, so it counts toward --size and a full
 * store answers OutOfMemory to the grant, which the client asks for ahead of need: a put never
 * resolves for an object that cannot be stored. A drained blob stays where its client wrote it:
 * its bytes are cut off the arena's block as a block of their own (Allocator.split), freed on its
 * own later. A Value's bytes are copied into its metadata and their block freed. The unused rest
 * of an arena is freed when the client moves on to its next arena, or disconnects.
 *
 * Every record is checked (kind, size, the arena's next offset, the block's next id); one that
 * is wrong was not written by trellis's client, so it is dropped, logged, and its client is
 * disconnected. Nothing after it in that ring is trusted; every other client is served.
 */
import { TrellisError } from '../errors';
import type { BlobLocation, GrantPutArenaReply } from '../protocol/messages';
import { formatId, formatIdOfWords, type IdGenerator } from '../protocol/ids';
import {
  H_ARMED,
  H_CAPACITY,
  H_HEAD,
  H_MAGIC,
  H_TAIL,
  H_VERSION,
  HEADER_WORDS,
  PUT_RING_ALIGNMENT,
  PUT_RING_LAYOUT_VERSION,
  PUT_RING_MAGIC,
  PUT_RING_MAX_BYTES,
  R_KIND,
  R_OFFSET,
  R_SEGMENT,
  R_SEQ_HIGH,
  R_SEQ_LOW,
  R_SIZE,
  RECORD_BLOB,
  RECORD_CREATE,
  RECORD_SEAL,
  RECORD_TENSOR,
  RECORD_VALUE,
  PUT_RING_TENSOR_DTYPES,
  R_DTYPE,
  RECORD_WORDS,
  arenaBytesFor,
  ringBytes,
} from '../protocol/put-ring-layout';
import { daemonLog } from './log';
import { whenDone, type Pending } from './metadata/meta-service';
import { KeptUntilExit } from './kept-until-exit';
import type { ObjectTable } from './object-table';
import type { Residency } from './residency';
import type { Placement, SegmentPool } from './segment-pool';
import type { ClientSession } from './session';

/** Default bytes of one arena; the daemon's --put-ring-bytes (0 turns rings off). */
export const DEFAULT_PUT_ARENA_BYTES = 1024 * 1024;
/** Records per ring at most: 128 KiB of ring, far more than a millisecond of puts. */
const MAX_RING_RECORDS = 4096;
/** Arenas a client may hold at once: the one it writes, the next, and one being retired. */
const MAX_ARENAS = 3;
/** While a ring is busy the daemon drains it this often, and no doorbell is needed. */
const POLL_MS = 1;
/** Polls that found a ring empty before the daemon arms it and waits for a doorbell. */
const QUIET_POLLS = 3;
/**
 * An arena's ids keep the id counter at most this far ahead of the clock (IdGenerator.reserve),
 * with at least MIN_ARENA_IDS: a restarted daemon's ids start at the clock, so it never hands out
 * an id of its earlier run again. A client moves on to its next arena when either runs out.
 */
const MAX_ID_LEAD_MICROS = 50_000;
const MIN_ARENA_IDS = 256;

/** RECORD_TENSOR's typename by dtype code, as types/tensor.ts names it: one string per code. */
const TENSOR_TYPENAMES = PUT_RING_TENSOR_DTYPES.map(({ dtype }) => `trellis::Tensor<${dtype}>`);

export interface PutRingHost {
  readonly pool: SegmentPool;
  readonly table: ObjectTable;
  readonly residency: Residency;
  readonly ids: IdGenerator;
  readonly instanceId: number;
  /** Where a thrown-off client's ring and arenas wait for its process to exit. */
  readonly keptUntilExit: KeptUntilExit;
  /** Closes the client's connection: its ring held a record trellis's client never writes. */
  disconnect(session: ClientSession, message: string): void;
}

interface Arena {
  readonly segment: number;
  /** Where the next object must start; its block runs to `end`. */
  cursor: number;
  readonly end: number;
  /** The sequence of the next object's id; the block's ids end before `endSequence`. */
  nextSequence: number;
  readonly endSequence: number;
}

interface Ring {
  readonly session: ClientSession;
  readonly block: Placement;
  readonly view: Uint8Array;
  readonly words: Int32Array;
  readonly capacity: number;
  /** Records drained so far (the daemon's copy of H_TAIL). */
  tail: number;
  readonly arenas: Arena[];
  /** Polled on the timer (not armed); counts the polls that found nothing. */
  active: boolean;
  quietPolls: number;
  /** A bad record was found: nothing more is read from this ring. */
  broken: boolean;
}

export class PutRings {
  private readonly rings = new Map<number, Ring>();
  /** Grants not yet done (waiting for a spill to make room), by client: they count toward MAX_ARENAS. */
  private readonly pendingGrants = new Map<number, number>();
  private poll?: NodeJS.Timeout;
  private readonly capacity: number;
  private reserved = 0;
  private taken = 0;

  /** `arenaBytes`: each arena's size, a multiple of 64 (0: no rings, every put goes through the socket). */
  constructor(
    private readonly host: PutRingHost,
    private readonly arenaBytes: number,
  ) {
    this.capacity = Math.min(MAX_RING_RECORDS, Math.max(16, 2 ** Math.floor(Math.log2(arenaBytes / 256 || 1))));
  }

  /** Rings open now (status, tests). */
  get count(): number {
    return this.rings.size;
  }

  /**
   * Records registered so far: what changed the table with no request (a seal changes no count),
   * for caches keyed on the request count (the HTTP API's listing).
   */
  get recordsTaken(): number {
    return this.taken;
  }

  /**
   * Pool bytes the rings hold that are no object's yet: the rings and the unused rest of their
   * arenas. They count toward --size; status().memoryUsage leaves them out, so that it goes up
   * and down with the objects themselves, as it did before rings.
   */
  get reservedBytes(): number {
    return this.reserved;
  }

  /**
   * grantPutArena: the session's ring (made on the first call) and a new arena with its ids.
   * `mapsSegments` false (RPC) or rings off: an empty reply. Errors: OutOfMemory, InvalidArgument.
   */
  grant(
    session: ClientSession,
    mapsSegments: boolean,
    grantSegment: (segment: number) => void,
  ): Pending<GrantPutArenaReply> {
    if (this.arenaBytes === 0 || !mapsSegments) return {};
    const ring = this.rings.get(session.clientId);
    if (ring?.broken) throw new TrellisError('ProtocolError', `client ${session.clientId}: its put ring was closed`);
    const { clientId } = session;
    const pending = this.pendingGrants.get(clientId) ?? 0;
    if ((ring?.arenas.length ?? 0) + pending >= MAX_ARENAS) {
      throw new TrellisError(
        'InvalidArgument',
        `grantPutArena: client ${clientId} holds ${MAX_ARENAS} arenas already, the most allowed` +
          (pending > 0 ? ` (${pending} of them being granted)` : ''),
      );
    }
    const ringSize = ringBytes(this.capacity);
    // Counted from here until the grant is done or failed, however long a spill makes it wait.
    this.pendingGrants.set(clientId, pending + 1);
    let granted: Pending<GrantPutArenaReply>;
    try {
      granted = this.grantArena(session, ring, ringSize, grantSegment);
    } catch (error) {
      this.grantDone(clientId);
      throw error;
    }
    if (!(granted instanceof Promise)) {
      this.grantDone(clientId);
      return granted;
    }
    return granted.finally(() => this.grantDone(clientId));
  }

  private grantDone(clientId: number): void {
    const left = (this.pendingGrants.get(clientId) ?? 1) - 1;
    if (left > 0) this.pendingGrants.set(clientId, left);
    else this.pendingGrants.delete(clientId);
  }

  private grantArena(
    session: ClientSession,
    ring: Ring | undefined,
    ringSize: number,
    grantSegment: (segment: number) => void,
  ): Pending<GrantPutArenaReply> {
    const madeRing = ring ? undefined : this.host.residency.allocate(ringSize, `put ring (${ringSize} bytes)`);
    return whenDone(madeRing, (ringBlock) =>
      whenDone(this.allocateArena(ringBlock), (arenaBlock) => {
        // A grant that waited (a spill made room) may find its client gone (its session dropped:
        // closed), or its ring made meanwhile.
        if (session.closed) {
          if (ringBlock) this.host.pool.free(ringBlock);
          this.host.pool.free(arenaBlock);
          throw new TrellisError(
            'ConnectionClosed',
            `client ${session.clientId} left before its put arena was granted`,
          );
        }
        let current = this.rings.get(session.clientId);
        if (current && ringBlock) {
          this.host.pool.free(ringBlock);
          ringBlock = undefined;
        }
        let ringLocation: BlobLocation | undefined;
        try {
          if (ringBlock) {
            ringLocation = { id: 'put-ring', segment: ringBlock.segment, offset: ringBlock.offset, size: ringSize };
            grantSegment(ringBlock.segment);
          }
          grantSegment(arenaBlock.segment);
        } catch (error) {
          if (ringBlock) this.host.pool.free(ringBlock);
          this.host.pool.free(arenaBlock);
          throw error;
        }
        if (!current) {
          current = this.open(session, ringBlock!, ringSize);
          this.reserved += ringSize;
        }
        this.reserved += this.arenaBytes;
        const { first: firstSequence, count: ids } = this.host.ids.reserve(
          this.arenaBytes / PUT_RING_ALIGNMENT,
          MIN_ARENA_IDS,
          MAX_ID_LEAD_MICROS,
        );
        current.arenas.push({
          segment: arenaBlock.segment,
          cursor: arenaBlock.offset,
          end: arenaBlock.offset + this.arenaBytes,
          nextSequence: firstSequence,
          endSequence: firstSequence + ids,
        });
        const arena = { ...arenaBlock, size: this.arenaBytes, firstSequence, ids };
        return ringLocation ? { ring: ringLocation, arena, maxRecordKind: RECORD_TENSOR } : { arena };
      }),
    );
  }

  private allocateArena(ringBlock: Placement | undefined): Pending<Placement> {
    try {
      const arena = this.host.residency.allocate(this.arenaBytes, `put arena (${this.arenaBytes} bytes)`);
      if (arena instanceof Promise && ringBlock) {
        return arena.catch((error: unknown) => {
          this.host.pool.free(ringBlock);
          throw error;
        });
      }
      return arena;
    } catch (error) {
      if (ringBlock) this.host.pool.free(ringBlock);
      throw error;
    }
  }

  private open(session: ClientSession, block: Placement, size: number): Ring {
    const view = this.host.pool.memory.openWritable({
      id: 'put-ring',
      segment: block.segment,
      offset: block.offset,
      size,
    });
    const words = new Int32Array(view.buffer, view.byteOffset, size / 4);
    Atomics.store(words, H_MAGIC, PUT_RING_MAGIC);
    Atomics.store(words, H_VERSION, PUT_RING_LAYOUT_VERSION);
    Atomics.store(words, H_CAPACITY, this.capacity);
    Atomics.store(words, H_HEAD, 0);
    Atomics.store(words, H_TAIL, 0);
    Atomics.store(words, H_ARMED, 1);
    const ring: Ring = {
      session,
      block,
      view,
      words,
      capacity: this.capacity,
      tail: 0,
      arenas: [],
      active: false,
      quietPolls: 0,
      broken: false,
    };
    this.rings.set(session.clientId, ring);
    return ring;
  }

  /** Drains every ring: before any request is handled, so that it sees every put resolved before it. */
  drainAll(): void {
    // Every request asks: with no ring, not even an iterator.
    if (this.rings.size === 0) return;
    for (const ring of this.rings.values()) if (Atomics.load(ring.words, H_HEAD) !== ring.tail) this.drain(ring);
  }

  /** The client is gone (even killed): its records are registered, then the rest of its memory freed. */
  drop(session: ClientSession): void {
    const ring = this.rings.get(session.clientId);
    if (!ring) return;
    this.rings.delete(session.clientId);
    try {
      this.drain(ring);
    } catch (error) {
      // A daemon stopping has closed its pool already: nothing is left to register into.
      daemonLog().warn(
        { client: session.clientId },
        `put ring: not drained at disconnect: ${(error as Error).message}`,
      );
    }
    // A client the daemon evicted may still be running, and writing its ring and arenas until it
    // sees the socket close: that memory goes back to the pool only once its process is gone.
    const keep: Placement[] | undefined = KeptUntilExit.applies(session) ? [] : undefined;
    for (const arena of ring.arenas) this.freeRest(arena, keep);
    ring.arenas.length = 0;
    this.reserved -= ring.view.byteLength;
    this.host.pool.memory.closeWritable(ring.view);
    if (keep) {
      keep.push(ring.block);
      this.host.keptUntilExit.keep(session, keep);
    } else {
      this.host.pool.free(ring.block);
    }
  }

  close(): void {
    clearTimeout(this.poll);
    this.poll = undefined;
  }

  /** Registers the ring's new records, in order; true when there were any. */
  private drain(ring: Ring): boolean {
    if (ring.broken) return false;
    const { words } = ring;
    const head = Atomics.load(words, H_HEAD);
    const waiting = (head - ring.tail) | 0;
    if (waiting === 0) return false;
    if (waiting < 0 || waiting > ring.capacity) {
      this.violation(ring, `its ring head ${head} is not within ${ring.capacity} records of the tail ${ring.tail}`);
      return false;
    }
    const mask = ring.capacity - 1;
    for (let i = 0; i < waiting; i++) {
      const base = HEADER_WORDS + (ring.tail & mask) * RECORD_WORDS;
      let problem: string | undefined;
      try {
        const kind = Atomics.load(words, base + R_KIND);
        problem = this.take(
          ring,
          kind,
          Atomics.load(words, base + R_SEQ_HIGH),
          Atomics.load(words, base + R_SEQ_LOW),
          // Unsigned: an arena in a segment over 2 GiB has offsets past 2^31.
          Atomics.load(words, base + R_SEGMENT) >>> 0,
          Atomics.load(words, base + R_OFFSET) >>> 0,
          Atomics.load(words, base + R_SIZE) >>> 0,
          kind === RECORD_TENSOR ? Atomics.load(words, base + R_DTYPE) : 0,
        );
      } catch (error) {
        // Only this ring's client can have caused it (an id in use): not whoever's request drained it.
        problem = (error as Error).message;
      }
      if (problem !== undefined) {
        this.violation(ring, `record ${ring.tail}: ${problem}`);
        break;
      }
      ring.tail = (ring.tail + 1) | 0;
      this.taken++;
    }
    Atomics.store(words, H_TAIL, ring.tail);
    this.busy(ring);
    return true;
  }

  /** Checks one record and registers its object; a description of what is wrong, or undefined. */
  private take(
    ring: Ring,
    kind: number,
    sequenceHigh: number,
    sequenceLow: number,
    segment: number,
    offset: number,
    size: number,
    dtypeCode: number,
  ): string | undefined {
    if (kind === RECORD_SEAL) return this.seal(ring, sequenceHigh, sequenceLow);
    if (kind !== RECORD_BLOB && kind !== RECORD_VALUE && kind !== RECORD_CREATE && kind !== RECORD_TENSOR)
      return `unknown kind ${kind}`;
    if (!(size >= 0 && size <= PUT_RING_MAX_BYTES)) return `size ${size} is outside 0..${PUT_RING_MAX_BYTES}`;
    // A tensor's element type is one of the codes, and its bytes are whole elements of it.
    const tensor = kind === RECORD_TENSOR ? PUT_RING_TENSOR_DTYPES[dtypeCode] : undefined;
    if (kind === RECORD_TENSOR) {
      if (tensor === undefined)
        return `tensor dtype code ${dtypeCode} is outside 0..${PUT_RING_TENSOR_DTYPES.length - 1}`;
      if (size % tensor.width !== 0) return `a ${tensor.dtype} tensor of ${size} bytes, not whole elements`;
    }
    let at = 0;
    while (at < ring.arenas.length && (ring.arenas[at].segment !== segment || ring.arenas[at].cursor !== offset)) at++;
    if (at === ring.arenas.length) return `segment ${segment} offset ${offset} is not where any of its arenas goes on`;
    const arena = ring.arenas[at];
    const sequence = (sequenceHigh >>> 0) * 2 ** 32 + (sequenceLow >>> 0);
    // A tensor takes two ids: its blob's (the record's) and its own, the next.
    const ids = tensor === undefined ? 1 : 2;
    if (sequence !== arena.nextSequence || sequence + ids > arena.endSequence) {
      return `id sequence ${sequence} is not the next of its block (${arena.nextSequence}), or ${ids} ids run past it`;
    }
    const length = arenaBytesFor(size);
    if (offset + length > arena.end)
      return `${size} bytes at offset ${offset} run past its arena (ends at ${arena.end})`;
    // The client writes its arenas in order: the ones before this are done with.
    if (at > 0) for (const retired of ring.arenas.splice(0, at)) this.freeRest(retired);
    const placement: Placement = { segment, offset };
    if (offset + length < arena.end && !this.host.pool.split(placement, size)) {
      return `the arena block at segment ${segment} offset ${offset} could not be cut`;
    }
    arena.cursor = offset + length;
    arena.nextSequence += ids;
    this.reserved -= length;
    if (arena.cursor === arena.end) ring.arenas.shift();
    else if (arena.nextSequence === arena.endSequence) {
      // Its ids ran out first: the client has moved on, and the rest of the block is free.
      this.freeRest(arena);
      ring.arenas.shift();
    }
    const id = formatIdOfWords(this.host.instanceId, sequenceHigh, sequenceLow);
    if (tensor !== undefined) {
      const tensorId = formatId(this.host.instanceId, sequence + 1);
      const fields = { dtype: tensor.dtype, shape: [size / tensor.width] };
      this.host.table.adoptRingTensor(ring.session, id, tensorId, size, placement, TENSOR_TYPENAMES[dtypeCode], fields);
    } else if (kind === RECORD_BLOB || kind === RECORD_CREATE) {
      this.host.table.adoptRingObject(ring.session, id, size, placement, undefined, kind === RECORD_BLOB);
    } else {
      const location = { id, segment, offset, size };
      const bytes = new Uint8Array(this.host.pool.memory.read(location, 0, size));
      this.host.pool.free(placement);
      this.host.table.adoptRingObject(ring.session, id, size, undefined, bytes);
    }
    return undefined;
  }

  /** A seal() of one of this client's unsealed blobs (made through the ring or not), held by it. */
  private seal(ring: Ring, sequenceHigh: number, sequenceLow: number): string | undefined {
    // An id's sequence has 48 bits: higher bits set name no blob (formatIdOfWords would drop them).
    if (sequenceHigh >>> 0 > 0xffff) return `seal of sequence high word ${sequenceHigh >>> 0}, above 16 bits`;
    const id = formatIdOfWords(this.host.instanceId, sequenceHigh, sequenceLow);
    if (!ring.session.unsealed.has(id)) return `seal of ${id}, which is no unsealed blob of this client`;
    this.host.table.seal(ring.session, id, true);
    return undefined;
  }

  /** Frees what the client did not use of the arena (or, with `keep`, puts it there instead). */
  private freeRest(arena: Arena, keep?: Placement[]): void {
    if (arena.cursor < arena.end) {
      const rest = { segment: arena.segment, offset: arena.cursor };
      if (keep) keep.push(rest);
      else this.host.pool.free(rest);
    }
    this.reserved -= arena.end - arena.cursor;
    arena.cursor = arena.end;
  }

  private violation(ring: Ring, problem: string): void {
    ring.broken = true;
    const { session } = ring;
    const message = `put ring of client ${session.clientId} (pid ${session.pid}): ${problem}`;
    daemonLog().warn({ client: session.clientId, pid: session.pid }, `${message}; disconnecting it`);
    // Not from inside a drain that another client's request started.
    queueMicrotask(() => this.host.disconnect(session, message));
  }

  /** A ring that had records is polled on the timer until it has been quiet a few polls. */
  private busy(ring: Ring): void {
    ring.quietPolls = 0;
    if (!ring.active) {
      ring.active = true;
      Atomics.store(ring.words, H_ARMED, 0);
    }
    this.poll ??= setTimeout(() => this.tick(), POLL_MS).unref();
  }

  private tick(): void {
    this.poll = undefined;
    let anyActive = false;
    for (const ring of this.rings.values()) {
      if (!ring.active || ring.broken) continue;
      if (this.drain(ring)) {
        anyActive = true;
        continue;
      }
      if (++ring.quietPolls < QUIET_POLLS) {
        anyActive = true;
        continue;
      }
      // Idle: arm, then look once more, since a record may have come before the client saw the flag.
      ring.active = false;
      Atomics.store(ring.words, H_ARMED, 1);
      if (this.drain(ring)) anyActive = true;
    }
    if (anyActive) this.poll ??= setTimeout(() => this.tick(), POLL_MS).unref();
  }
}
