/**
 * Streams: one writer appends sealed objects (chunks) while one reader takes them in order, in
 * any process. The daemon only moves chunk ids; the bytes stay where the writer put them.
 *
 * - A reader waits for chunks not written yet; after finish it drains and gets `end`; after
 *   fail it gets StreamFailed with the reason.
 * - A chunk is deleted once read: when the reader asks for the next one, closes, or goes away.
 * - Recycling: a ByteStream chunk (one blob) that the reader has moved past and nobody else holds,
 *   of the size the writer wrote last, is not freed but becomes a new unsealed blob of its writer,
 *   handed over with the answer to the writer's next write. Steady-state writes then go into
 *   memory the writer has already touched (a fresh page costs a fault, and far more on a VM with
 *   shadow paging), and need no createBlobs. Chunks read with `keep` are never recycled; unused
 *   recycled blobs go back when the writer finishes, fails or goes away.
 * - A reader may read one chunk ahead (`ahead`): it asks for chunk n+1 as soon as chunk n is
 *   handed to its caller, so the next chunk travels while this one is used. Then a read frees
 *   the chunk before the newest, and the newest chunk, until the next read, has not reached the
 *   caller: a reader that closes or goes away puts it back at the front of the queue.
 * - A reader with a cursor may prefetch (`prefetch`): it asks for the next chunks as its caller
 *   gets the first chunk of an answer of several, so they travel while the caller works through
 *   that answer. Such a read frees only the chunks of answers before the last one, and on close
 *   or disconnect the cursor says which chunks of the last two answers the caller got; the
 *   others go back to the queue. An end (or failure) answered to a prefetch leaves the cursor to
 *   the reader, which still writes it until it takes that answer, and then aborts it.
 * - Back-pressure: a write is answered only once the unread chunks take at most
 *   `maxBufferedBytes`, so a fast writer waits instead of filling the store.
 * - A writer that disconnects fails the stream; a reader that disconnects frees the reader slot,
 *   and a new reader continues with the next unread chunk.
 * - A stream that never finished (unopened, or failed) is dropped once every client that created,
 *   wrote or read it is gone: nobody is left to open it or to be told it failed, and a soak that
 *   SIGKILLs clients mid-stream would otherwise pile them up. A finished stream is data, like a
 *   sealed object: it waits for a reader whoever made it.
 */
import { TrellisError } from '../errors';
import type { BlobLocation, ObjectMeta, OpenStreamReply, ReadChunkReply } from '../protocol/messages';
import type { IdGenerator } from '../protocol/ids';
import type { ObjectTable } from './object-table';
import type { SegmentMemory } from './segment-memory';
import type { ClientSession } from './session';

export const STREAM_TYPENAMES = [
  'trellis::ByteStream',
  'trellis::RecordBatchStream',
  'trellis::DataframeStream',
] as const;

type WriterState = 'unopened' | 'open' | 'finished' | 'failed';

interface ReadOptions {
  keep: boolean;
  ahead: boolean;
  /** Chunks the answer may carry. */
  max: number;
  /** Free only the chunks of answers before the last (see the top). */
  prefetch: boolean;
}

/**
 * Recycled blobs a stream keeps for its writer between two writes, at most (or one chunk, if
 * larger): a writer that falls behind (or stops writing without finishing) holds at most this
 * much memory it did not ask for. Room for two reads of 16 MiB: a prefetching reader frees a
 * whole read at once, and at 16 MiB one chunk in six of a 1 MiB stream was freed instead and
 * made again for the writer.
 */
const MAX_RECYCLED_BYTES = 32 * 1024 * 1024;

/**
 * Bytes one read hands out at most when it asks for several chunks (or one chunk, if larger):
 * the reader holds them until its next read, so they are neither buffered nor recyclable.
 */
const MAX_READ_BYTES = 16 * 1024 * 1024;
/** Chunks one read hands out at most. */
const MAX_READ_CHUNKS = 64;
/** A reader's cursor: the read it took last and how many of its chunks reached the caller. */
const CURSOR_BYTES = 8;

interface QueuedChunk {
  readonly id: string;
  readonly nbytes: number;
  /** A single blob its writer sealed with the write (a ByteStream chunk): its memory may be reused. */
  readonly recyclable: boolean;
}

interface DeliveredChunk extends QueuedChunk {
  /** The blobs the reader holds references to for it. */
  readonly blobs: string[];
  /** The reader keeps its references when it moves on (readTable gathers chunks zero-copy). */
  readonly keep: boolean;
  /** Given in answer to a read ahead: it reaches the caller only with the reader's next read. */
  readonly ahead: boolean;
  /** Which read of the stream handed it out: a read may hand out several chunks. */
  readonly read: number;
  /** Its place among that read's chunks, from 1. */
  readonly position: number;
}

export interface StreamSummary {
  id: string;
  typename: string;
  state: WriterState;
  /** Chunks written and not yet taken by a reader. */
  queuedChunks: number;
  queuedBytes: number;
  /** Whether a reader is attached. */
  reading: boolean;
}

interface Stream {
  readonly id: string;
  readonly typename: string;
  readonly schema?: Uint8Array;
  readonly params: Record<string, unknown>;
  writer?: ClientSession;
  reader?: ClientSession;
  /** The reader's cursor (see OpenStreamReply), an unsealed blob of the reader. */
  cursor?: BlobLocation;
  state: WriterState;
  failure?: string;
  readonly queue: QueuedChunk[];
  queuedBytes: number;
  /** Chunks recycled into unsealed blobs of the writer, not yet handed to it. */
  recycled: BlobLocation[];
  recycledBytes: number;
  /** The size of the chunk written last: only chunks of that size are recycled. */
  lastWrittenBytes: number;
  /**
   * Chunks given to the reader and not deleted yet, oldest first: one, or two when it reads
   * ahead; those of a whole answer or two when it reads several at a time.
   */
  readonly delivered: DeliveredChunk[];
  /** The reader prefetches (see the top): its cursor decides which chunks go back. */
  prefetching: boolean;
  pendingRead?: { resolve(reply: ReadChunkReply): void; reject(error: Error): void } & ReadOptions;
  /** Reads answered so far (numbers the delivered chunks). */
  reads: number;
  pendingWrites: Array<() => void>;
  /** Connected clients that created, wrote or read it. */
  readonly holders: Set<ClientSession>;
}

export class StreamTable {
  private readonly streams = new Map<string, Stream>();

  constructor(
    private readonly table: ObjectTable,
    private readonly ids: IdGenerator,
    private readonly maxBufferedBytes: number,
    private readonly memory: SegmentMemory,
  ) {}

  get size(): number {
    return this.streams.size;
  }

  /** The stream's typename, or undefined when `id` is no stream. */
  typenameOf(id: string): string | undefined {
    return this.streams.get(id)?.typename;
  }

  /** The first `limit` streams, oldest first: what the dashboard shows. */
  list(limit: number): StreamSummary[] {
    const found: StreamSummary[] = [];
    for (const stream of this.streams.values()) {
      if (found.length >= limit) break;
      found.push({
        id: stream.id,
        typename: stream.typename,
        state: stream.state,
        queuedChunks: stream.queue.length,
        queuedBytes: stream.queuedBytes,
        reading: stream.reader !== undefined,
      });
    }
    return found;
  }

  /** Errors: InvalidArgument for an unknown stream typename. */
  create(
    session: ClientSession,
    typename: string,
    schema: Uint8Array | undefined,
    params: Record<string, unknown>,
  ): string {
    if (!(STREAM_TYPENAMES as readonly string[]).includes(typename)) {
      throw new TrellisError(
        'InvalidArgument',
        `unknown stream type ${JSON.stringify(typename)}; use one of ${STREAM_TYPENAMES.join(', ')}`,
      );
    }
    const id = this.ids.next();
    this.streams.set(id, {
      id,
      typename,
      schema,
      params,
      state: 'unopened',
      queue: [],
      queuedBytes: 0,
      pendingWrites: [],
      recycled: [],
      recycledBytes: 0,
      lastWrittenBytes: -1,
      delivered: [],
      prefetching: false,
      reads: 0,
      holders: new Set([session]),
    });
    return id;
  }

  /** Errors: ObjectNotFound, StreamOpened (a writer is attached or was). */
  openWriter(session: ClientSession, id: string): OpenStreamReply {
    const stream = this.stream(id);
    if (stream.state !== 'unopened') {
      throw new TrellisError(
        'StreamOpened',
        `stream ${id} already has a writer${stream.state === 'open' ? '' : ` (it ${stream.state})`}`,
      );
    }
    stream.writer = session;
    stream.state = 'open';
    stream.holders.add(session);
    return describeStream(stream);
  }

  /** Errors: ObjectNotFound, StreamOpened, OutOfMemory (the cursor). */
  openReader(session: ClientSession, id: string, cursor = false): OpenStreamReply {
    const stream = this.stream(id);
    if (stream.reader)
      throw new TrellisError('StreamOpened', `stream ${id} already has a reader (client ${stream.reader.clientId})`);
    if (cursor) {
      stream.cursor = this.table.createBlobs(session, [CURSOR_BYTES])[0];
      // [no read, none given] until the reader writes it: a new blob holds whatever its block held
      // last, and a reader closed or killed before its first answer would have those bytes say
      // that its caller got chunks it never saw (they were deleted instead of going back).
      this.memory.write(stream.cursor, 0, new Uint8Array(CURSOR_BYTES));
    }
    stream.reader = session;
    stream.holders.add(session);
    return { ...describeStream(stream), ...(stream.cursor && { cursor: stream.cursor, prefetch: true }) };
  }

  /**
   * Appends sealed objects, in order (each after sealing its `seal` blobs); answered once the
   * buffer is below its limit. A chunk that fails stops the ones after it.
   * Errors: ObjectNotFound, NotSealed, PermissionDenied (not the writer), StreamFailed.
   */
  write(
    session: ClientSession,
    id: string,
    appends: ReadonlyArray<{ chunk: string; seal: string[] }>,
  ): void | Promise<void> {
    const stream = this.writable(session, id);
    for (const { chunk, seal } of appends) {
      for (const blob of seal) this.table.seal(session, blob, false);
      const object = this.table.sealedObject(chunk);
      // Read once and freed: never worth spilling.
      this.table.markTransient(chunk);
      const recyclable = object.blob && seal.length === 1 && seal[0] === chunk;
      stream.queue.push({ id: chunk, nbytes: object.nbytes, recyclable });
      stream.queuedBytes += object.nbytes;
      stream.lastWrittenBytes = object.nbytes;
    }
    this.deliver(stream);
    if (stream.queuedBytes <= this.maxBufferedBytes) return;
    return new Promise((resolve) => stream.pendingWrites.push(resolve));
  }

  /**
   * The next chunk, once there is one. `ahead`: the reader's caller still uses the newest chunk
   * it was given, so only older ones are deleted. Errors: ObjectNotFound, PermissionDenied (not
   * the reader), StreamFailed. `max`: the chunks one answer may carry; `prefetch`: see the top
   * (both as in ReadChunkRequest).
   */
  read(
    session: ClientSession,
    id: string,
    keep: boolean,
    ahead = false,
    max = 1,
    prefetch = false,
  ): ReadChunkReply | Promise<ReadChunkReply> {
    const stream = this.stream(id);
    if (stream.reader !== session)
      throw new TrellisError('PermissionDenied', `stream ${id}: open it as a reader first`);
    if (stream.pendingRead) throw new TrellisError('InvalidArgument', `stream ${id}: a read is already waiting`);
    // Only a reader with a cursor can say which chunks of two answers its caller got.
    prefetch = ahead && prefetch && stream.cursor !== undefined;
    if (prefetch) stream.prefetching = true;
    const lastRead = stream.reads;
    const spare = prefetch ? stream.delivered.filter((chunk) => chunk.read === lastRead).length : ahead ? 1 : 0;
    this.discardDelivered(stream, spare);
    const request = { keep, ahead, max: Math.min(Math.max(max, 1), MAX_READ_CHUNKS), prefetch };
    return (
      this.take(stream, request) ??
      new Promise((resolve, reject) => (stream.pendingRead = { resolve, reject, ...request }))
    );
  }

  /**
   * The blobs recycled for the writer since its last write (see the top), now its own: they go
   * with the answer to that write. Empty when `id` is no stream this client writes.
   */
  takeRecycled(session: ClientSession, id: string): BlobLocation[] {
    const stream = this.streams.get(id);
    if (!stream || stream.writer !== session || stream.recycled.length === 0) return [];
    const recycled = stream.recycled;
    stream.recycled = [];
    stream.recycledBytes = 0;
    return recycled;
  }

  /** Errors: ObjectNotFound, PermissionDenied, StreamFailed. */
  finish(session: ClientSession, id: string): void {
    const stream = this.writable(session, id);
    this.dropRecycled(stream);
    stream.state = 'finished';
    stream.writer = undefined;
    this.deliver(stream);
  }

  /** Errors: ObjectNotFound, PermissionDenied, StreamFailed. */
  fail(session: ClientSession, id: string, reason: string): void {
    this.failStream(this.writable(session, id), reason);
  }

  /** `unseen`: see CloseStreamRequest. */
  closeReader(session: ClientSession, id: string, unseen?: number): void {
    const stream = this.streams.get(id);
    if (!stream || stream.reader !== session) return;
    // A read ahead still waiting gets the end; the reader that sent it has stopped reading.
    stream.pendingRead?.resolve({ end: true });
    this.detachReader(stream, unseen);
  }

  /** A client went away: its streams fail (writer), lose their reader, or go (nobody left). */
  dropSession(session: ClientSession): void {
    for (const stream of this.streams.values()) {
      if (stream.writer === session && stream.state === 'open') {
        // failStream gives back the recycled blobs not handed to it yet; its other unsealed blobs
        // go with the client (kept while a thrown-off client may still write them).
        this.failStream(stream, `the writer (client ${session.clientId}) disconnected`);
      }
      if (stream.reader === session) this.detachReader(stream);
      stream.holders.delete(session);
      if (stream.holders.size === 0 && (stream.state === 'unopened' || stream.state === 'failed')) {
        this.streams.delete(stream.id);
      }
    }
  }

  private take(stream: Stream, request: ReadOptions): ReadChunkReply | undefined {
    if (stream.queue.length > 0) {
      const read = ++stream.reads;
      const first = this.handOut(stream, request, read, 1);
      const reply: ReadChunkReply = { end: false, ...first, read };
      let bytes = stream.delivered.at(-1)!.nbytes;
      const more = [];
      // Several only for a reader with a cursor: going away, it must leave exactly the unseen ones.
      const max = stream.cursor ? request.max : 1;
      while (more.length + 1 < max && stream.queue.length > 0) {
        if (bytes + stream.queue[0].nbytes > MAX_READ_BYTES) break;
        bytes += stream.queue[0].nbytes;
        more.push(this.handOut(stream, request, read, more.length + 2));
      }
      if (more.length > 0) reply.more = more;
      this.relieve(stream);
      return reply;
    }
    if (stream.state === 'finished' || stream.state === 'failed') {
      // The caller may still be using the last chunk (read ahead): its references outlive the
      // delete, and the reader releases them once it moves on.
      this.discardDelivered(stream, 0, request.ahead);
      // A prefetching reader still writes its cursor as its caller gets the rest of the last answer,
      // until it takes this end: freed now, the block could go to a put whose bytes those writes
      // would then change. It stays an unsealed blob of the reader, which aborts it once it has
      // the end (or it goes with the reader's other blobs when it disconnects).
      if (request.prefetch) stream.cursor = undefined;
      else this.dropCursor(stream);
      this.streams.delete(stream.id);
      if (stream.state === 'finished') return { end: true };
      throw new TrellisError('StreamFailed', `stream ${stream.id} failed: ${stream.failure}`);
    }
    return undefined;
  }

  /** The queue's first chunk, now the reader's. */
  private handOut(
    stream: Stream,
    request: ReadOptions,
    read: number,
    position: number,
  ): { meta: ObjectMeta; blobs: BlobLocation[] } {
    const next = stream.queue.shift()!;
    stream.queuedBytes -= next.nbytes;
    const described: { meta: ObjectMeta; blobs: BlobLocation[] } = this.table.describe(stream.reader, next.id);
    const { keep, ahead } = request;
    stream.delivered.push({ ...next, keep, ahead, read, position, blobs: described.blobs.map((blob) => blob.id) });
    return described;
  }

  /**
   * The reader closed or went away: chunks of its last read ahead that never reached its caller
   * (`unseen` of them; all, when the reader did not say) go back to the front of the queue, for
   * the next reader; the others are deleted. A reader that goes away in the middle of a read of
   * several chunks thus leaves the ones its caller had already been given to the next reader too.
   * A prefetching reader's cursor sorts the chunks of its last two answers (see unseenByCursor).
   */
  private detachReader(stream: Stream, unseen?: number): void {
    const last = stream.delivered.at(-1);
    let back: DeliveredChunk[] = [];
    if (stream.prefetching && stream.state !== 'failed') {
      // Whether or not a read waits, the cursor tells the chunks the caller got from the rest.
      unseen ??= this.unseenByCursor(stream);
      back = stream.delivered.splice(stream.delivered.length - Math.min(Math.max(unseen, 0), stream.delivered.length));
    } else if (last?.ahead && !stream.pendingRead && stream.state !== 'failed') {
      const ofLastRead = stream.delivered.filter((chunk) => chunk.read === last.read).length;
      unseen ??= ofLastRead - this.cursorSeen(stream, last.read);
      back = stream.delivered.splice(stream.delivered.length - Math.min(Math.max(unseen, 0), ofLastRead));
    }
    for (const chunk of back.reverse()) {
      if (!this.table.exists(chunk.id)) continue;
      this.table.release(stream.reader!, chunk.blobs);
      stream.queue.unshift({ id: chunk.id, nbytes: chunk.nbytes, recyclable: chunk.recyclable });
      stream.queuedBytes += chunk.nbytes;
    }
    stream.pendingRead = undefined;
    this.discardDelivered(stream, 0);
    this.dropCursor(stream);
    stream.reader = undefined;
    stream.prefetching = false;
  }

  /**
   * The delivered chunks the reader's caller never got, by its cursor [read r, given g]: a chunk
   * of an earlier read than r, or among the first g of read r, reached it. Without a readable
   * cursor, none did.
   */
  private unseenByCursor(stream: Stream): number {
    const [read, given] = this.readCursor(stream) ?? [0, 0];
    const seen = (chunk: DeliveredChunk) => chunk.read < read || (chunk.read === read && chunk.position <= given);
    return stream.delivered.filter((chunk) => !seen(chunk)).length;
  }

  /** How many chunks of read `read` the reader's caller got, by its cursor (none without one). */
  private cursorSeen(stream: Stream, read: number): number {
    const [cursorRead, given] = this.readCursor(stream) ?? [0, 0];
    return cursorRead === read ? given : 0;
  }

  /** The reader's cursor [read, given], when it still has one. */
  private readCursor(stream: Stream): [number, number] | undefined {
    if (!stream.cursor || !stream.reader?.unsealed.has(stream.cursor.id)) return undefined;
    const bytes = this.memory.read(stream.cursor, 0, CURSOR_BYTES);
    return [bytes.readInt32LE(0), bytes.readInt32LE(4)];
  }

  private dropCursor(stream: Stream): void {
    const cursor = stream.cursor;
    stream.cursor = undefined;
    if (cursor && stream.reader?.unsealed.has(cursor.id)) this.table.abort(stream.reader, cursor.id);
  }

  /** Answers a waiting read, if there is one and something to give it. */
  private deliver(stream: Stream): void {
    const waiting = stream.pendingRead;
    if (!waiting) return;
    try {
      const reply = this.take(stream, waiting);
      if (!reply) return;
      stream.pendingRead = undefined;
      waiting.resolve(reply);
    } catch (error) {
      stream.pendingRead = undefined;
      waiting.reject(error as Error);
    }
  }

  private failStream(stream: Stream, reason: string): void {
    this.dropRecycled(stream);
    stream.state = 'failed';
    stream.failure = reason;
    stream.writer = undefined;
    const unread = stream.queue.splice(0).map((chunk) => chunk.id);
    stream.queuedBytes = 0;
    this.deleteChunks(stream.reader, unread);
    this.relieve(stream);
    this.deliver(stream);
  }

  private relieve(stream: Stream): void {
    while (stream.pendingWrites.length > 0 && stream.queuedBytes <= this.maxBufferedBytes)
      stream.pendingWrites.shift()!();
  }

  /**
   * Deletes the chunks given to the reader but the newest `spare` of them. With `keepReferences`
   * (or a chunk read with keep), the reader's references survive the delete: the free waits for
   * the reader to release them.
   */
  private discardDelivered(stream: Stream, spare: number, keepReferences = false): void {
    while (stream.delivered.length > spare) {
      const chunk = stream.delivered.shift()!;
      if (chunk.keep || keepReferences) this.deleteChunks(undefined, [chunk.id]);
      else if (!this.recycle(stream, chunk)) this.deleteChunks(stream.reader, [chunk.id]);
    }
  }

  /** Gives a chunk the reader has moved past to the writer as a blob to fill (see the top). */
  private recycle(stream: Stream, chunk: DeliveredChunk): boolean {
    const writer = stream.writer;
    if (!chunk.recyclable || !writer || stream.state !== 'open') return false;
    // A writer whose chunks change size would only give a blob of another size back.
    if (chunk.nbytes !== stream.lastWrittenBytes) return false;
    // One chunk of any size, so that huge chunks (whose fresh pages cost the most) are reused too.
    if (stream.recycled.length > 0 && stream.recycledBytes + chunk.nbytes > MAX_RECYCLED_BYTES) return false;
    const blob = this.table.recycle(stream.reader, chunk.id, writer);
    if (!blob) return false;
    stream.recycled.push(blob);
    stream.recycledBytes += blob.size;
    return true;
  }

  /** The writer is done: the recycled blobs it was not given (never written by it) go back to the pool. */
  private dropRecycled(stream: Stream): void {
    for (const blob of stream.recycled) if (stream.writer) this.table.abort(stream.writer, blob.id, false);
    stream.recycled = [];
    stream.recycledBytes = 0;
  }

  private deleteChunks(session: ClientSession | undefined, ids: string[]): void {
    const live = ids.filter((id) => this.table.exists(id));
    if (live.length > 0) this.table.delete(session, live, { deep: true, force: true });
  }

  private writable(session: ClientSession, id: string): Stream {
    const stream = this.stream(id);
    if (stream.state === 'failed') throw new TrellisError('StreamFailed', `stream ${id} failed: ${stream.failure}`);
    if (stream.writer !== session)
      throw new TrellisError('PermissionDenied', `stream ${id}: open it as its writer first`);
    return stream;
  }

  private stream(id: string): Stream {
    const stream = this.streams.get(id);
    if (!stream) throw new TrellisError('ObjectNotFound', `stream ${id} does not exist (or has ended)`);
    return stream;
  }
}

function describeStream(stream: Stream): OpenStreamReply {
  return { typename: stream.typename, schema: stream.schema, params: stream.params };
}
