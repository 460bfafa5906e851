/**
 * The client's half of the put ring (layout in protocol/put-ring-layout.ts, why it is correct in
 * docs/put-ring.md): a small bare put is written into an arena of shared memory the daemon
 * granted this client, named with the next id of the block granted with the arena, and appended
 * to the ring as a record; it resolves with that id at once. The daemon drains the ring before
 * it handles any request, so whatever anyone asks the daemon after the put resolved sees it.
 *
 * Room is asked for ahead of need: the next arena is granted while the current one is half used,
 * and the grant is where OutOfMemory comes (the caller then puts through the socket, which
 * answers as it always did). A full ring waits for the daemon to drain it; nothing is dropped.
 */
import { isTrellisError, TrellisError } from '../errors';
import type { BlobLocation, GrantPutArenaReply, PutArena } from '../protocol/messages';
import { formatId, sequenceOf } from '../protocol/ids';
import {
  H_ARMED,
  H_CAPACITY,
  H_HEAD,
  H_MAGIC,
  H_TAIL,
  H_VERSION,
  HEADER_WORDS,
  PUT_RING_LAYOUT_VERSION,
  PUT_RING_MAGIC,
  R_KIND,
  R_OFFSET,
  R_SEGMENT,
  R_SEQ_HIGH,
  R_SEQ_LOW,
  R_DTYPE,
  R_SIZE,
  RECORD_CREATE,
  RECORD_SEAL,
  RECORD_TENSOR,
  RECORD_WORDS,
  arenaBytesFor,
} from '../protocol/put-ring-layout';
import type { Channel } from './channel';

/**
 * The daemon reads a record after it sees the head move: the record's and the bytes' plain stores
 * must be visible first. x86-64 keeps stores in order (TSO); elsewhere puts go through the socket
 * until a native fence backs the ring (docs/put-ring.md).
 */
export const PUT_RING_SUPPORTED = process.arch === 'x64';

export { RECORD_BLOB, RECORD_TENSOR, RECORD_VALUE, PUT_RING_MAX_BYTES } from '../protocol/put-ring-layout';

interface ClientArena {
  readonly bytes: Uint8Array;
  readonly segment: number;
  readonly start: number;
  readonly end: number;
  cursor: number;
  readonly firstSequence: number;
  nextSequence: number;
  /** The block's ids end before this: fewer than one per 64 bytes when the daemon gave fewer. */
  readonly endSequence: number;
}

export class PutRing {
  private readonly capacity: number;
  private head: number;
  private readonly arenas: ClientArena[] = [];
  /** The next arena's grant, asked for ahead of need; undefined when none is pending. */
  private granting?: Promise<void>;

  /**
   * `words`: the ring block, writable; `first`: the arena granted with it; `takesTensors`: the
   * daemon takes RECORD_TENSOR (an earlier one does not). Errors: ProtocolError.
   */
  constructor(
    private readonly channel: Channel,
    private readonly words: Int32Array,
    first: PutArena,
    readonly takesTensors = false,
  ) {
    if (Atomics.load(words, H_MAGIC) !== PUT_RING_MAGIC || Atomics.load(words, H_VERSION) !== PUT_RING_LAYOUT_VERSION)
      throw new TrellisError('ProtocolError', 'the put ring granted has no ring of a layout this client writes');
    this.capacity = Atomics.load(words, H_CAPACITY);
    if (HEADER_WORDS + this.capacity * RECORD_WORDS > words.length)
      throw new TrellisError(
        'ProtocolError',
        `the put ring claims ${this.capacity} records, more than its block holds`,
      );
    this.head = Atomics.load(words, H_HEAD);
    this.addArena(first);
  }

  /**
   * Writes the object and resolves its id, or undefined when it must wait: the ring is full, or
   * no arena has room for it (put() then waits), or the connection is closed. `dtype`: a
   * RECORD_TENSOR's element type code; its object takes two ids, and its id is the second.
   */
  tryPut(kind: number, data: Uint8Array, dtype = 0): string | undefined {
    const placed = this.place(data.byteLength, kind === RECORD_TENSOR ? 2 : 1);
    if (placed === undefined) return undefined;
    const { arena, offset } = placed;
    arena.bytes.set(data, offset - arena.start);
    return this.append(kind, placed.sequence, arena.segment, offset, data.byteLength, dtype);
  }

  /**
   * A small createBlob with no round trip: an unsealed blob of `size` bytes at the arena's next
   * place, which the caller fills through a writable view of exactly its bytes; undefined as
   * tryPut. Seal it with seal(id).
   */
  tryCreate(size: number): BlobLocation | undefined {
    const placed = this.place(size);
    if (placed === undefined) return undefined;
    const { arena, offset } = placed;
    const id = this.append(RECORD_CREATE, placed.sequence, arena.segment, offset, size);
    return { id, segment: arena.segment, offset, size };
  }

  /** Seals a blob of this client (kept held, as seal() does). Errors: ConnectionClosed. */
  async seal(id: string): Promise<void> {
    const sequence = sequenceOf(id);
    // Full, or closed: the request waits for a drain, or fails as any request of this client would.
    while (!this.hasRecordRoom()) await this.channel.request('drainPutRing', {});
    this.append(RECORD_SEAL, sequence, 0, 0, 0);
  }

  private hasRecordRoom(): boolean {
    return !this.channel.closed && ((this.head - Atomics.load(this.words, H_TAIL)) | 0) < this.capacity;
  }

  /**
   * Room for `size` bytes, `ids` ids and a record: the arena, the place and the first id;
   * undefined when there is none.
   */
  private place(size: number, ids = 1): { arena: ClientArena; offset: number; sequence: number } | undefined {
    if (!this.hasRecordRoom()) return undefined;
    const length = arenaBytesFor(size);
    let arena = this.arenas[0];
    // An arena too full for this object, or out of ids, is left (the daemon frees its rest).
    while (arena !== undefined && (arena.cursor + length > arena.end || arena.nextSequence + ids > arena.endSequence)) {
      this.arenas.shift();
      arena = this.arenas[0];
    }
    if (arena === undefined) return undefined;
    const offset = arena.cursor;
    arena.cursor = offset + length;
    const sequence = arena.nextSequence;
    arena.nextSequence += ids;
    if (
      this.arenas.length === 1 &&
      this.granting === undefined &&
      (arena.cursor - arena.start > (arena.end - arena.start) / 2 ||
        arena.nextSequence - arena.firstSequence > (arena.endSequence - arena.firstSequence) / 2)
    )
      this.granting = this.grantNext().catch(() => undefined);
    return { arena, offset, sequence };
  }

  /** Appends a record (the ring has room) and publishes it; the id of the object it makes. */
  private append(kind: number, sequence: number, segment: number, offset: number, size: number, dtype = 0): string {
    const words = this.words;
    const base = HEADER_WORDS + (this.head & (this.capacity - 1)) * RECORD_WORDS;
    Atomics.store(words, base + R_KIND, kind);
    Atomics.store(words, base + R_SEQ_HIGH, Math.floor(sequence / 2 ** 32));
    Atomics.store(words, base + R_SEQ_LOW, (sequence % 2 ** 32) | 0);
    Atomics.store(words, base + R_SEGMENT, segment);
    Atomics.store(words, base + R_OFFSET, offset);
    Atomics.store(words, base + R_SIZE, size);
    if (kind === RECORD_TENSOR) Atomics.store(words, base + R_DTYPE, dtype);
    this.head = (this.head + 1) | 0;
    // The publishing store: the daemon reads nothing of this record before it sees the head move.
    Atomics.store(words, H_HEAD, this.head);
    // The doorbell, only when the daemon armed it (it went idle): a request whose answer nobody awaits.
    if (Atomics.load(words, H_ARMED) === 1 && Atomics.exchange(words, H_ARMED, 0) === 1) {
      this.channel.request('drainPutRing', {}).catch(() => undefined);
    }
    // A tensor's blob has the record's id, and the tensor the next.
    return formatId(this.instanceId, kind === RECORD_TENSOR ? sequence + 1 : sequence);
  }

  /** As tryPut, waiting for room when needed. Errors: OutOfMemory (no arena), ConnectionClosed. */
  async put(kind: number, data: Uint8Array, dtype = 0): Promise<string> {
    for (;;) {
      const id = this.tryPut(kind, data, dtype);
      if (id !== undefined) return id;
      if (!this.hasRecordRoom()) {
        // Full: the daemon drains every ring before it answers any request (closed: it fails as any would).
        await this.channel.request('drainPutRing', {});
      } else {
        await (this.granting ?? (this.granting = this.grantNext()));
      }
    }
  }

  private async grantNext(): Promise<void> {
    try {
      const { arena } = await this.channel.request('grantPutArena', {});
      if (arena === undefined) throw new TrellisError('Unavailable', 'trellisd granted no put arena');
      this.addArena(arena);
    } finally {
      this.granting = undefined;
    }
  }

  private addArena(arena: PutArena): void {
    const location = { id: 'put-arena', segment: arena.segment, offset: arena.offset, size: arena.size };
    this.arenas.push({
      bytes: new Uint8Array(this.channel.writable(location)),
      segment: arena.segment,
      start: arena.offset,
      end: arena.offset + arena.size,
      cursor: arena.offset,
      firstSequence: arena.firstSequence,
      nextSequence: arena.firstSequence,
      endSequence: arena.firstSequence + arena.ids,
    });
  }

  private get instanceId(): number {
    return this.channel.instanceId;
  }
}

/**
 * Asks the daemon for a ring and its first arena; null where there is none to use (not x86-64,
 * an RPC client, a daemon with rings off or of an earlier version). Errors: OutOfMemory,
 * ConnectionClosed.
 */
export async function openPutRing(channel: Channel): Promise<PutRing | null> {
  if (!PUT_RING_SUPPORTED) return null;
  let reply: GrantPutArenaReply;
  try {
    reply = await channel.request('grantPutArena', {});
  } catch (error) {
    if (isTrellisError(error, 'OutOfMemory') || isTrellisError(error, 'ConnectionClosed')) throw error;
    // A daemon of an earlier version does not know the request: puts go through it as before.
    if (error instanceof TrellisError) return null;
    throw error;
  }
  if (reply.ring === undefined || reply.arena === undefined) return null;
  const ring = channel.writable(reply.ring);
  const takesTensors = (reply.maxRecordKind ?? 0) >= RECORD_TENSOR;
  return new PutRing(channel, new Int32Array(ring, 0, reply.ring.size / 4), reply.arena, takesTensors);
}
