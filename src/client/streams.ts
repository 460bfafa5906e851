/**
 * Streams, the client half: a writer appends chunks (sealed objects) and a reader takes them in
 * order, in any process. Bytes go into blobs the writer fills in place; only ids cross the
 * socket. What a chunk is beyond bytes (an arrow RecordBatch, say) is decided by the typed
 * client through the encode/decode hooks, so this file stays below types/.
 */
import { TrellisError } from '../errors';
import type {
  BlobLocation,
  ChunkAppend,
  ChunkRead,
  OpenStreamReply,
  ReadChunkReply,
  WriteChunkReply,
  WriteChunkRequest,
} from '../protocol/messages';
import type { BlobCache, BlobWriter } from './blobs';
import type { Channel } from './channel';
import { ObjectHandle } from './object-handle';

/**
 * Blobs for chunks of bytes are created ahead, SPARE_BATCH at a time in one request, as long as
 * chunks keep one size and a batch takes at most MAX_SPARE_BYTES; larger chunks get their blob
 * when written, so that a stream of huge chunks never holds extra ones.
 */
const SPARE_BATCH = 4;
const MAX_SPARE_BYTES = 16 * 1024 * 1024;

/**
 * Chunks written and not yet answered, at most, and their bytes: write() returns while they
 * travel, so filling the next chunks overlaps their round trips. The stream's back-pressure thus
 * lets a writer get at most this many chunks, and (beyond one chunk) this many bytes, past
 * --stream-buffer: a stream of huge chunks keeps one or two in flight, not sixteen.
 */
const MAX_CHUNKS_IN_FLIGHT = 16;
const MAX_BYTES_IN_FLIGHT = 16 * 1024 * 1024;

/**
 * A writer that keeps writing (it never waits for anything between chunks) sends its chunks
 * this many at a time, or once they take SEND_AT_BYTES; a writer that waits between chunks sends
 * what it has as it waits (at the event loop's next turn). Each request wakes the daemon, and its
 * answer to a waiting reader wakes the reader: on a busy or virtual machine each wake-up costs
 * more than moving a chunk's id, so fewer, fuller requests move more bytes.
 */
const SEND_AT_CHUNKS = MAX_CHUNKS_IN_FLIGHT / 2;
const SEND_AT_BYTES = 8 * 1024 * 1024;

/**
 * Chunks one read may bring (the daemon also caps their bytes): a reader behind its writer takes
 * the chunks written meanwhile in one round trip, not one each.
 */
const CHUNKS_PER_READ = 16;

/** Turns a chunk that is not bytes into a sealed object id (the typed client puts it). */
export type ChunkEncoder = (chunk: unknown) => Promise<string>;
/** Turns a chunk object into the value the reader yields. */
export type ChunkDecoder = (chunk: ObjectHandle) => unknown;

export class StreamWriter {
  private done = false;
  /**
   * One writeChunk request at a time travels, not awaited by write() (see MAX_CHUNKS_IN_FLIGHT);
   * chunks written meanwhile wait in `unsent` and leave together in the next one, so a writer
   * ahead of the round trip pays one request (and the daemon one answer) for several chunks.
   * An append's error (and the stream's back-pressure) reach the caller at a later write,
   * finish or fail.
   */
  private sending: Promise<void> | undefined;
  private unsent: Array<{ append: ChunkAppend; blob?: BlobWriter }> = [];
  /** Bytes of the chunks in `unsent` that are bytes (see SEND_AT_BYTES). */
  private unsentBytes = 0;
  /** A send of `unsent` at the event loop's next turn is due (see SEND_AT_CHUNKS). */
  private flushDue = false;
  /** Chunks in `unsent` or in the request on its way, and the bytes of those that are bytes. */
  private unanswered = 0;
  private unansweredBytes = 0;
  private failure: unknown;
  /**
   * Blobs created ahead for chunks of `spareSize` bytes, in the order they were asked for: a
   * writer mostly writes chunks of one size, so a write finds its blob made and skips a round
   * trip. One resolves to undefined when its creation failed: the write then creates its own
   * blob and meets the error itself.
   */
  private spares: Array<Promise<BlobWriter | undefined>> = [];
  /**
   * Chunks the reader has moved past, given back by the daemon as blobs of this writer (answers
   * to appends carry them), oldest first: memory this process has touched already, so a write
   * into one costs no page faults, and no round trip to create it. Used before any spare.
   */
  private recycled: BlobWriter[] = [];
  private spareSize = -1;
  /** The size of the last chunk of bytes: spares are made once two chunks in a row had one size. */
  private lastSize = -1;

  constructor(
    private readonly channel: Channel,
    private readonly blobs: BlobCache,
    readonly id: string,
    readonly info: OpenStreamReply,
    private readonly encode: ChunkEncoder,
  ) {}

  /**
   * Appends a chunk: bytes are copied once into shared memory; anything else is put by the typed
   * client. Resolves once the stream has room (back-pressure). Errors: StreamFailed, OutOfMemory.
   */
  async write(chunk: unknown): Promise<void> {
    this.ensureOpen();
    if (chunk instanceof Uint8Array) {
      const writer = await this.blobFor(chunk.byteLength);
      writer.fill(chunk);
      await this.makeRoom();
      this.append({ chunk: writer.id, seal: [writer.id] }, writer, chunk.byteLength);
      return;
    }
    const id = await this.encode(chunk);
    await this.makeRoom();
    this.append({ chunk: id });
  }

  /** A blob of `size` bytes to fill: a spare when there is one of that size, else a new one. */
  private async blobFor(size: number): Promise<BlobWriter> {
    const recycled = this.takeRecycled(size);
    if (recycled) {
      this.lastSize = size;
      return recycled;
    }
    if (size !== this.spareSize) void this.dropSpares();
    const spare = this.spares.shift();
    // Asked for before the spares, so that it is answered first.
    const made = spare ? undefined : this.blobs.create([size], undefined, true);
    const repeated = size === this.lastSize;
    this.lastSize = size;
    const batch = Math.min(SPARE_BATCH, Math.floor(MAX_SPARE_BYTES / Math.max(size, 1)));
    if (repeated && size > 0 && batch > 0 && this.spares.length < batch) {
      const created = this.blobs.create(new Array<number>(batch).fill(size), undefined, true).catch(() => undefined);
      for (let i = 0; i < batch; i++) this.spares.push(created.then((writers) => writers?.[i]));
      this.spareSize = size;
    }
    return (await spare) ?? (await (made ?? this.blobs.create([size], undefined, true)))[0];
  }

  /** The oldest recycled blob of `size` bytes; recycled blobs of other sizes go back. */
  private takeRecycled(size: number): BlobWriter | undefined {
    let found: BlobWriter | undefined;
    let others: BlobWriter[] | undefined;
    while (!found && this.recycled.length > 0) {
      const blob = this.recycled.shift()!;
      if (blob.size === size) found = blob;
      else (others ??= []).push(blob);
    }
    if (others) void this.blobs.abortQuietly(others);
    return found;
  }

  /**
   * Gives back the spare and recycled blobs, in one request once the spares are made: a chunk of
   * another size came, or the stream ends (a finishing writer of 1 MiB chunks has ~70 of them).
   */
  private async dropSpares(): Promise<void> {
    const spares = this.spares;
    this.spares = [];
    this.spareSize = -1;
    const recycled = this.recycled.splice(0);
    const made = await Promise.all(spares);
    await this.blobs.abortQuietly([...recycled, ...made.filter((writer) => writer !== undefined)]);
  }

  /**
   * Waits until fewer than MAX_CHUNKS_IN_FLIGHT chunks, and fewer than MAX_BYTES_IN_FLIGHT bytes,
   * are unanswered; throws an append's error.
   */
  private async makeRoom(): Promise<void> {
    while ((this.unanswered >= MAX_CHUNKS_IN_FLIGHT || this.unansweredBytes >= MAX_BYTES_IN_FLIGHT) && this.sending) {
      await this.sending;
    }
    this.throwFailure();
  }

  /** Waits until every chunk written is answered. */
  private async settleAppends(): Promise<void> {
    if (!this.sending && this.unsent.length > 0) this.sendUnsent();
    while (this.sending) await this.sending;
  }

  private throwFailure(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** `blob`: the writer's blob the append seals (a chunk of bytes), of `bytes`. */
  private append(append: ChunkAppend, blob?: BlobWriter, bytes = 0): void {
    this.unsent.push({ append, blob });
    this.unsentBytes += bytes;
    this.unanswered++;
    this.unansweredBytes += bytes;
    if (this.sending) return;
    if (this.unsent.length >= SEND_AT_CHUNKS || this.unsentBytes >= SEND_AT_BYTES) {
      this.sendUnsent();
    } else if (!this.flushDue) {
      this.flushDue = true;
      setImmediate(() => {
        this.flushDue = false;
        if (!this.sending && this.unsent.length > 0) this.sendUnsent();
      });
    }
  }

  private sendUnsent(): void {
    const batch = this.unsent;
    const batchBytes = this.unsentBytes;
    this.unsent = [];
    this.unsentBytes = 0;
    const [first, ...more] = batch.map((entry) => entry.append);
    const request: WriteChunkRequest = { id: this.id, ...first };
    if (more.length > 0) request.more = more;
    const answered = (reply: WriteChunkReply) => {
      // Marked sealed once the daemon has them: over RPC the bytes travel with this very request.
      for (const entry of batch) entry.blob?.sealedElsewhere();
      if (reply.recycled) this.adoptRecycled(reply.recycled);
    };
    this.sending = this.channel
      .request('writeChunk', request)
      .then(answered)
      .then(
        () => this.sent(batch.length, batchBytes),
        (error) => {
          this.failure ??= error;
          // Nothing more goes out: the blobs of this batch (unless the daemon sealed them before
          // it failed) and those written meanwhile go back.
          const entries = [...batch, ...this.unsent.splice(0)];
          void this.blobs.abortQuietly(entries.flatMap((entry) => (entry.blob ? [entry.blob] : [])));
          this.unsentBytes = 0;
          this.unanswered = 0;
          this.unansweredBytes = 0;
          this.sending = undefined;
        },
      );
  }

  private sent(count: number, bytes: number): void {
    this.unanswered -= count;
    this.unansweredBytes -= bytes;
    this.sending = undefined;
    if (this.unsent.length > 0) this.sendUnsent();
  }

  private adoptRecycled(locations: BlobLocation[]): void {
    const recycled = this.blobs.adopt(locations, true);
    // A writer that finished or failed meanwhile does not want them.
    if (this.done) void this.blobs.abortQuietly(recycled);
    else this.recycled.push(...recycled);
  }

  /** Ends the stream: the reader drains what is left and stops. */
  async finish(): Promise<void> {
    this.ensureOpen();
    this.done = true;
    try {
      await this.settleAppends();
      this.throwFailure();
      await this.channel.request('finishStream', { id: this.id });
    } finally {
      // After the finish, so that the reader does not wait for one abort per unused blob.
      await this.dropSpares();
    }
  }

  /** Fails the stream: the reader throws StreamFailed with this reason. */
  async fail(reason: string): Promise<void> {
    this.ensureOpen();
    this.done = true;
    await this.dropSpares();
    await this.settleAppends();
    await this.channel.request('failStream', { id: this.id, reason: String(reason) });
  }

  private ensureOpen(): void {
    if (this.done) throw new TrellisError('StreamFailed', `stream ${this.id}: this writer already finished or failed`);
  }
}

export class StreamReader implements AsyncIterable<unknown> {
  /** The blobs of the chunk the caller has now. */
  private previous: string[] = [];
  private ended = false;
  /**
   * The read of the chunk after the caller's, sent as the caller got its chunk (a read ahead):
   * it travels while the caller uses that chunk, so the stream moves a chunk per round trip at
   * most, not a chunk per round trip plus the caller's time.
   */
  private ahead: Promise<ReadChunkReply> | undefined;
  /**
   * A next() waits for a read (the one read ahead, taken over, or its own): whatever that read
   * brings has not reached the caller, and close() must not say otherwise.
   */
  private awaitingRead = false;
  /**
   * Chunks the last read brought beyond its first, not yet given to the caller. The next read
   * goes out once the first chunk of a read is given when the daemon takes prefetch reads (it
   * then frees only the reads before the last), else once the last is given.
   */
  private unread: ChunkRead[] = [];
  /** The daemon takes prefetch reads (see ReadChunkRequest), and this reader has a cursor. */
  private readonly prefetch: boolean;
  /**
   * The blobs of every chunk of the last read: when the stream ends or fails in answer to a
   * prefetch, the daemon deletes them but leaves this client's references to drop once its
   * caller is done with them.
   */
  private lastReadBlobs: string[] = [];
  /**
   * Where this reader tells the daemon how far its caller got (see OpenStreamReply's cursor):
   * only a reader with one in shared memory reads several chunks at a time.
   */
  private readonly cursor: Buffer | undefined;
  private readonly chunksPerRead: number;
  /** Chunks of the last read given to the caller. */
  private given = 0;

  constructor(
    private readonly channel: Channel,
    private readonly blobs: BlobCache,
    readonly id: string,
    readonly info: OpenStreamReply,
    private readonly decode: ChunkDecoder,
    /** Keep every chunk's memory until this client closes (readTable gathers them zero-copy). */
    private readonly keep = false,
  ) {
    const cursor = info.cursor && blobs.adopt([info.cursor])[0].buffer;
    this.cursor = cursor && channel.isSharedMemory(cursor) ? cursor : undefined;
    this.chunksPerRead = this.cursor ? CHUNKS_PER_READ : 1;
    this.prefetch = this.cursor !== undefined && info.prefetch === true;
  }

  /**
   * The next chunk, or undefined at the end. Unless the reader keeps chunks, the one before is
   * freed now: do not hold on to views of it. Errors: StreamFailed.
   */
  async next(): Promise<unknown> {
    if (this.ended) return undefined;
    // The daemon freed the cursor and the chunks with the client (the cursor's buffer is detached).
    if (this.channel.closed) throw new TrellisError('ConnectionClosed', `stream ${this.id}: the client was closed`);
    if (!this.keep) this.blobs.forget(this.previous);
    let chunk = this.unread.shift();
    const firstOfRead = !chunk;
    if (!chunk) {
      const reading = this.ahead ?? this.readAhead();
      this.ahead = undefined;
      let reply: ReadChunkReply;
      this.awaitingRead = true;
      try {
        reply = await reading;
      } catch (error) {
        const closed = this.ended;
        this.ended = true;
        await Promise.all([this.releasePrevious(), this.abortCursor()]);
        // close() ran meanwhile: over RPC this answer's bytes are fetched after it, and the close
        // let go of them (its chunks went back to the queue). Nothing of it was the caller's.
        if (closed) return undefined;
        throw error;
      } finally {
        this.awaitingRead = false;
      }
      // close() ran meanwhile and the daemon freed the cursor with it (another put may have its
      // block now): nothing of this answer is the caller's, and nothing is counted. An end left the
      // cursor and the last chunks' references to this reader, as below.
      if (this.ended) {
        if (reply.end) await Promise.all([this.releasePrevious(), this.abortCursor()]);
        return undefined;
      }
      if (reply.end) {
        this.ended = true;
        await Promise.all([this.releasePrevious(), this.abortCursor()]);
        return undefined;
      }
      chunk = { meta: reply.meta!, blobs: reply.blobs ?? [] };
      this.unread = reply.more ?? [];
      if (this.prefetch) this.lastReadBlobs = [chunk, ...this.unread].flatMap((c) => c.blobs.map((blob) => blob.id));
      this.given = 0;
      // The count first: killed in between, the daemon never pairs an older count with this read.
      this.cursor?.writeInt32LE(0, 4);
      this.cursor?.writeInt32LE(reply.read ?? 0, 0);
    }
    this.cursor?.writeInt32LE(++this.given, 4);
    const views = new Map<string, Buffer>();
    for (const location of chunk.blobs) {
      this.blobs.remember(location);
      views.set(location.id, this.blobs.view(location).buffer);
    }
    this.previous = [...views.keys()];
    // The daemon frees the chunks before this one when the read arrives (before this read's, for
    // a prefetch): the caller has left them.
    if (this.prefetch ? firstOfRead : this.unread.length === 0) this.ahead = this.readAhead();
    return this.decode(new ObjectHandle(chunk.meta, views));
  }

  private readAhead(): Promise<ReadChunkReply> {
    const request = { id: this.id, keep: this.keep, ahead: true, max: this.chunksPerRead, prefetch: this.prefetch };
    const reading = this.channel.request('readChunk', request);
    // Seen by next() or close(); never an unhandled rejection meanwhile.
    reading.catch(() => {});
    return reading;
  }

  /**
   * The stream ended (or failed) in answer to a read ahead, while the caller still had its
   * chunk: the daemon deleted that chunk but left this client's references for it to drop, now
   * that the caller has moved on. A reader that keeps chunks keeps them until the client closes.
   */
  private async releasePrevious(): Promise<void> {
    // A prefetch may be answered while the caller is still given the last read's chunks.
    const ids = this.prefetch ? [...new Set([...this.previous, ...this.lastReadBlobs])] : this.previous;
    this.previous = [];
    this.lastReadBlobs = [];
    if (this.keep || ids.length === 0) return;
    this.blobs.forget(ids);
    await this.channel.request('release', { ids }).catch(() => {});
  }

  /**
   * The stream ended (or failed) in answer to a prefetch: the daemon left the cursor to this
   * reader, which wrote it until now (freed earlier, its block could have gone to another
   * object, and these writes into that object's bytes). Nothing writes it from here on.
   */
  private async abortCursor(): Promise<void> {
    const cursor = this.info.cursor;
    if (!this.prefetch || !cursor) return;
    this.blobs.forget([cursor.id]);
    // An older daemon freed it with the answer already (ObjectNotFound).
    await this.channel.request('abort', { id: cursor.id }).catch(() => {});
  }

  /** Stops early; the unread chunks (the one read ahead included) stay for another reader. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const ahead = this.ahead;
    this.ahead = undefined;
    if (!this.keep) this.blobs.forget(this.previous);
    const unread = this.unread.splice(0);
    // A read ahead still waiting is answered with the end; one answered already goes back to the
    // queue, whole: so does the read a next() under way waits for (the caller gets nothing of it).
    // Without one, the chunks of the last read the caller was not given go back. A prefetching
    // reader's cursor tells the daemon which chunks of its last two reads go back.
    const reading = ahead !== undefined || this.awaitingRead;
    await this.channel.request(
      'closeReader',
      reading || this.prefetch ? { id: this.id } : { id: this.id, unseen: unread.length },
    );
    this.blobs.forget(unread.flatMap((chunk) => chunk.blobs.map((blob) => blob.id)));
    const reply = await ahead?.catch(() => undefined);
    if (ahead && (reply === undefined || reply.end)) {
      // The stream ended meanwhile: the caller's chunk's references are this client's to drop.
      await this.releasePrevious();
    } else if (reply) {
      const chunks = [reply.blobs ?? [], ...(reply.more ?? []).map((chunk) => chunk.blobs)];
      this.blobs.forget(chunks.flatMap((blobs) => blobs.map((blob) => blob.id)));
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<unknown> {
    try {
      for (;;) {
        const chunk = await this.next();
        if (chunk === undefined) return;
        yield chunk;
      }
    } finally {
      await this.close();
    }
  }
}
