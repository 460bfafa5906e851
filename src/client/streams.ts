/**
 * Streams, the client half: a writer appends chunks (sealed objects) and a reader takes them in
 * order, in any process. Bytes go into blobs the writer fills in place; only ids cross the
 * socket. What a chunk is beyond bytes (an arrow RecordBatch, say) is decided by the typed
 * client through the encode/decode hooks, so this file stays below types/.
 */
import { TrellisError } from '../errors';
import type { OpenStreamReply, WriteChunkRequest } from '../protocol/messages';
import type { BlobCache } from './blobs';
import type { Channel } from './channel';
import { ObjectHandle } from './object-handle';

/** Turns a chunk that is not bytes into a sealed object id (the typed client puts it). */
export type ChunkEncoder = (chunk: unknown) => Promise<string>;
/** Turns a chunk object into the value the reader yields. */
export type ChunkDecoder = (chunk: ObjectHandle) => unknown;

export class StreamWriter {
  private done = false;
  /**
   * The last chunk's append, not awaited by write(): the next chunk is allocated and filled while
   * it travels, so a stream moves a chunk per round trip instead of two. Its error (and the
   * stream's back-pressure) reach the caller at the next write, finish or fail.
   */
  private appending: Promise<unknown> = Promise.resolve();

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
      const [writer] = await this.blobs.create([chunk.byteLength]);
      writer.buffer.set(chunk);
      await this.appending;
      // Marked sealed once the daemon has it: over RPC the bytes travel with this very request.
      this.append({ id: this.id, chunk: writer.id, seal: [writer.id] }, () => writer.sealedElsewhere());
      return;
    }
    const id = await this.encode(chunk);
    await this.appending;
    this.append({ id: this.id, chunk: id });
  }

  private append(request: WriteChunkRequest, appended: () => void = () => {}): void {
    this.appending = this.channel.request('writeChunk', request).then(appended);
    // Handled here so a failed append is never an unhandled rejection; the next call sees it.
    this.appending.catch(() => {});
  }

  /** Ends the stream: the reader drains what is left and stops. */
  async finish(): Promise<void> {
    this.ensureOpen();
    this.done = true;
    await this.appending;
    await this.channel.request('finishStream', { id: this.id });
  }

  /** Fails the stream: the reader throws StreamFailed with this reason. */
  async fail(reason: string): Promise<void> {
    this.ensureOpen();
    this.done = true;
    await this.appending.catch(() => {});
    await this.channel.request('failStream', { id: this.id, reason: String(reason) });
  }

  private ensureOpen(): void {
    if (this.done) throw new TrellisError('StreamFailed', `stream ${this.id}: this writer already finished or failed`);
  }
}

export class StreamReader implements AsyncIterable<unknown> {
  private previous: string[] = [];
  private ended = false;

  constructor(
    private readonly channel: Channel,
    private readonly blobs: BlobCache,
    readonly id: string,
    readonly info: OpenStreamReply,
    private readonly decode: ChunkDecoder,
    /** Keep every chunk's memory until this client closes (readTable gathers them zero-copy). */
    private readonly keep = false,
  ) {}

  /**
   * The next chunk, or undefined at the end. Unless the reader keeps chunks, the one before is
   * freed now: do not hold on to views of it. Errors: StreamFailed.
   */
  async next(): Promise<unknown> {
    if (this.ended) return undefined;
    if (!this.keep) this.blobs.forget(this.previous);
    let reply;
    try {
      reply = await this.channel.request('readChunk', { id: this.id, keep: this.keep });
    } catch (error) {
      this.ended = true;
      throw error;
    }
    if (reply.end) {
      this.ended = true;
      return undefined;
    }
    const views = new Map<string, Buffer>();
    for (const location of reply.blobs ?? []) {
      this.blobs.remember(location);
      views.set(location.id, this.blobs.view(location).buffer);
    }
    this.previous = [...views.keys()];
    return this.decode(new ObjectHandle(reply.meta!, views));
  }

  /** Stops early; the unread chunks stay for another reader. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.blobs.forget(this.previous);
    await this.channel.request('closeReader', { id: this.id });
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
