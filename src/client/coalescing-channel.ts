/**
 * Gets issued in the same tick go to the daemon as one getObjects request (DataLoader style):
 * 100 gets in flight cost one frame each way instead of 100, and the daemon answers the plain
 * blobs among them in columns. Each get still stands alone: the request asks for `each`, so a
 * ref that fails rejects its own get only. Puts of bare bytes (a put of a small Buffer) are
 * coalesced the same way into one compact putBlobs with `each`: a put that does not fit in a
 * full store rejects alone. A request alone in its tick goes as it is, as before.
 *
 * Order is kept: any other request flushes the queued ones first, so the daemon sees every
 * request in the order the client made it (a get, then a release of the same id, stays so).
 * Queued gets and puts cannot depend on each other: a put's id is not known until it is answered.
 */
import { fromWireError } from '../errors';
import type { BlobLocation, ClientKind, GetObjectReply, PutBlobsReply, ReplyOf, RequestOf } from '../protocol/messages';
import { answers, isWireError } from '../protocol/plain-blob-columns';
import type { Channel } from './channel';

/** Refs per getObjects request: far under the daemon's limit, and a frame well under 1 MiB. */
const MAX_REFS_PER_BATCH = 4096;

/** Puts per putBlobs request: with inline blobs of up to 64 KiB, a frame of at most 16 MiB. */
const MAX_PUTS_PER_BATCH = 256;

/** Settled once: `.then` on it queues a microtask. */
const RESOLVED = Promise.resolve();

interface QueuedGet {
  ref: string;
  resolve(reply: GetObjectReply): void;
  reject(error: Error): void;
}

interface QueuedPut {
  data: Uint8Array;
  resolve(reply: PutBlobsReply): void;
  reject(error: Error): void;
}

/** A putBlobs of one blob of bare bytes (what a put of a small Buffer sends). */
function isBarePut(kind: ClientKind, body: unknown): body is { sizes: [number]; data: Uint8Array } {
  if (kind !== 'putBlobs') return false;
  // A loop over the keys rather than a rest object: this runs for every put that is a request.
  for (const key in body as object) if (key !== 'sizes' && key !== 'data') return false;
  const { sizes, data } = body as RequestOf<'putBlobs'>;
  return sizes !== undefined && sizes.length === 1 && data !== undefined;
}

/** A getObject of a ref alone (no version, no fetch): the kind that is coalesced. */
function isPlainGet(kind: ClientKind, body: unknown): body is { ref: string } {
  if (kind !== 'getObject') return false;
  for (const key in body as object) if (key !== 'ref') return false;
  return true;
}

export class CoalescingChannel implements Channel {
  private gets: QueuedGet[] = [];
  private puts: QueuedPut[] = [];
  private flushScheduled = false;

  constructor(private readonly inner: Channel) {}

  get endpoint(): string {
    return this.inner.endpoint;
  }
  get instanceId(): number {
    return this.inner.instanceId;
  }
  get closed(): boolean {
    return this.inner.closed;
  }

  request<K extends ClientKind>(kind: K, body: RequestOf<K>): Promise<ReplyOf<K>> {
    if (isPlainGet(kind, body)) {
      this.scheduleFlush();
      return new Promise<GetObjectReply>((resolve, reject) =>
        this.gets.push({ ref: body.ref, resolve, reject }),
      ) as Promise<ReplyOf<K>>;
    }
    if (isBarePut(kind, body)) {
      this.scheduleFlush();
      return new Promise<PutBlobsReply>((resolve, reject) =>
        this.puts.push({ data: body.data, resolve, reject }),
      ) as Promise<ReplyOf<K>>;
    }
    this.flush();
    return this.inner.request(kind, body);
  }

  writable(blob: BlobLocation): ArrayBuffer {
    return this.inner.writable(blob);
  }
  fill(blob: BlobLocation, bytes: Uint8Array): void {
    this.inner.fill(blob, bytes);
  }
  view(blob: BlobLocation): Buffer {
    return this.inner.view(blob);
  }
  forget(ids: string[]): void {
    this.inner.forget(ids);
  }
  isSharedMemory(view: ArrayBufferView | ArrayBufferLike): boolean {
    return this.inner.isSharedMemory(view);
  }
  unref(): void {
    this.inner.unref();
  }
  close(): void {
    this.flush();
    this.inner.close();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A microtask as queueMicrotask's, without the async resource Node makes for each of those
    // (its first use cost a fresh process's first get ~0.1 ms of compiling). flush never throws.
    void RESOLVED.then(this.flushLater);
  }

  private readonly flushLater = (): void => this.flush();

  /** Sends the queued gets and puts (nothing when none are queued). */
  private flush(): void {
    this.flushScheduled = false;
    if (this.gets.length > 0) {
      const gets = this.gets;
      this.gets = [];
      if (gets.length <= MAX_REFS_PER_BATCH) this.send(gets);
      else
        for (let at = 0; at < gets.length; at += MAX_REFS_PER_BATCH) this.send(gets.slice(at, at + MAX_REFS_PER_BATCH));
    }
    if (this.puts.length > 0) {
      const puts = this.puts;
      this.puts = [];
      if (puts.length <= MAX_PUTS_PER_BATCH) this.sendPuts(puts);
      else
        for (let at = 0; at < puts.length; at += MAX_PUTS_PER_BATCH)
          this.sendPuts(puts.slice(at, at + MAX_PUTS_PER_BATCH));
    }
  }

  private sendPuts(batch: QueuedPut[]): void {
    if (batch.length === 1) {
      const only = batch[0];
      this.inner
        .request('putBlobs', { sizes: [only.data.byteLength], data: only.data })
        .then(only.resolve, only.reject);
      return;
    }
    const sizes = batch.map((put) => put.data.byteLength);
    const data = Buffer.concat(batch.map((put) => put.data));
    this.inner.request('putBlobs', { sizes, data, each: true }).then(
      ({ ids, errors }) => {
        let stored = 0;
        let failed = 0;
        batch.forEach((put, i) => {
          if (errors !== undefined && errors.at[failed] === i) put.reject(fromWireError(errors.errors[failed++]));
          else put.resolve({ ids: [ids[stored++]] });
        });
      },
      (error: Error) => {
        for (const put of batch) put.reject(error);
      },
    );
  }

  private send(batch: QueuedGet[]): void {
    if (batch.length === 1) {
      const only = batch[0];
      this.inner.request('getObject', { ref: only.ref }).then(only.resolve, only.reject);
      return;
    }
    const refs = batch.map((get) => get.ref);
    this.inner.request('getObjects', { refs, columns: true, each: true }).then(
      (reply) =>
        answers(reply).forEach((answer, i) => {
          if (isWireError(answer)) batch[i].reject(fromWireError(answer));
          else batch[i].resolve(answer);
        }),
      (error: Error) => {
        for (const get of batch) get.reject(error);
      },
    );
  }
}
