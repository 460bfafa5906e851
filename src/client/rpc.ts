/**
 * The client end of a daemon's RPC port (TCP): the same requests as the UNIX socket, but no fd
 * can cross, so bytes are copied through the connection instead of mapped.
 *
 * - A new blob's writer fills a local buffer; its bytes go up (writeBlob, in chunks) just before
 *   the request that seals it: seal, createMetadata or createMetadataMany with `seal`, writeChunk.
 * - Every reply that hands out blobs (getBlobs, getObject, getObjects, readChunk) is followed by readBlobs
 *   for the ones not here yet, so the blob views the client then takes are local copies, kept
 *   until the client lets go of them. None of them is shared memory.
 */
import { TrellisError } from '../errors';
import type { BlobLocation, ClientKind, ReplyOf, RequestOf } from '../protocol/messages';
import { answers, isWireError } from '../protocol/plain-blob-columns';
import { RpcSocket, type RpcSocketOptions } from '../protocol/rpc-socket';
import type { Channel } from './channel';

export type RpcConnectOptions = RpcSocketOptions;

/** Requests that seal blobs, and which: the client uploads their bytes first. */
const SEALED_BY: { [K in ClientKind]?: (body: RequestOf<K>) => string[] } = {
  seal: (body) => [body.id],
  createMetadata: (body) => body.seal ?? [],
  createMetadataMany: (body) => body.objects.flatMap((object) => object.seal ?? []),
  writeChunk: (body) => [...(body.seal ?? []), ...(body.more ?? []).flatMap((append) => append.seal ?? [])],
  importArchive: (body) => body.seal,
};

/** Blobs uploaded at a time: a table's many small buffers overlap, and big ones do not pile up past their deadlines. */
const UPLOAD_LANES = 4;

/** Replies that hand out blobs: the client downloads their bytes before answering. */
const HANDS_OUT_BLOBS = new Set<ClientKind>(['getBlobs', 'getObject', 'readChunk']);

/** Requests that may wait on purpose (for a name, a stream, a copy between daemons): no deadline. */
function waitsOnPurpose<K extends ClientKind>(kind: K, body: RequestOf<K>): boolean {
  if (kind === 'getName') return (body as RequestOf<'getName'>).wait === true;
  return kind === 'readChunk' || kind === 'writeChunk' || kind === 'migrate' || kind === 'putGlobal';
}

export class RpcChannel implements Channel {
  /** Unsealed blobs of this client: their bytes, written locally until they are sealed. */
  private readonly uploads = new Map<string, ArrayBuffer>();
  /** Sealed blobs this client holds: local copies of their bytes. */
  private readonly copies = new Map<string, Buffer>();

  private constructor(private readonly socket: RpcSocket) {}

  /** Errors: Unavailable, PermissionDenied (token), InvalidArgument (endpoint), ProtocolError. */
  static async open(endpoint: string, options: RpcConnectOptions = {}): Promise<RpcChannel> {
    return new RpcChannel(await RpcSocket.connect(endpoint, options));
  }

  get endpoint(): string {
    return this.socket.endpoint;
  }

  get instanceId(): number {
    return this.socket.registration.instanceId;
  }

  get closed(): boolean {
    return this.socket.closed;
  }

  async request<K extends ClientKind>(kind: K, body: RequestOf<K>): Promise<ReplyOf<K>> {
    const sealing = SEALED_BY[kind]?.(body) ?? [];
    if (sealing.length > 0) await this.upload(sealing);
    const reply = await this.socket.request(kind, body, waitsOnPurpose(kind, body) ? { timeoutMs: 0 } : {});
    if (sealing.length > 0) this.sealed(sealing, kind === 'seal' && (body as RequestOf<'seal'>).hold !== false);
    if (kind === 'abort') this.uploads.delete((body as RequestOf<'abort'>).id);
    if (kind === 'abortBlobs') for (const id of (body as RequestOf<'abortBlobs'>).ids) this.uploads.delete(id);
    if (HANDS_OUT_BLOBS.has(kind)) await this.download((reply as { blobs?: BlobLocation[] }).blobs ?? []);
    if (kind === 'readChunk') await this.download((reply as ReplyOf<'readChunk'>).more?.flatMap((c) => c.blobs) ?? []);
    if (kind === 'getObjects')
      await this.download(answers(reply as ReplyOf<'getObjects'>).flatMap((o) => (isWireError(o) ? [] : o.blobs)));
    return reply;
  }

  writable(blob: BlobLocation): ArrayBuffer {
    const buffer = new ArrayBuffer(blob.size);
    this.uploads.set(blob.id, buffer);
    return buffer;
  }

  fill(blob: BlobLocation, bytes: Uint8Array): void {
    // The bytes go up when the blob is sealed, from the buffer kept for it.
    new Uint8Array(this.uploads.get(blob.id) ?? this.writable(blob)).set(bytes);
  }

  view(blob: BlobLocation): Buffer {
    const copy = this.copies.get(blob.id);
    if (!copy)
      throw new TrellisError('ProtocolError', `blob ${blob.id} has no local copy: it was released or never fetched`);
    return copy;
  }

  forget(ids: string[]): void {
    for (const id of ids) this.copies.delete(id);
  }

  isSharedMemory(): boolean {
    return false;
  }

  unref(): void {
    this.socket.unref();
  }

  close(): void {
    this.socket.close();
    this.uploads.clear();
    this.copies.clear();
  }

  /** Sends the bytes of these unsealed blobs, a few blobs at a time (each in a few chunks at a time). */
  private async upload(ids: string[]): Promise<void> {
    const pending = [...new Set(ids)].filter((id) => (this.uploads.get(id)?.byteLength ?? 0) > 0);
    const lane = async (): Promise<void> => {
      for (let id = pending.shift(); id !== undefined; id = pending.shift()) {
        await this.socket.writeBlob(id, 0, new Uint8Array(this.uploads.get(id)!));
      }
    };
    await Promise.all(Array.from({ length: Math.min(UPLOAD_LANES, pending.length) }, lane));
  }

  /**
   * The daemon sealed them. With `keep` (a seal that holds a reference, as BlobWriter.seal does),
   * the uploaded bytes become the local copy: moved, not copied, before the writer detaches them.
   */
  private sealed(ids: string[], keep: boolean): void {
    for (const id of ids) {
      const buffer = this.uploads.get(id);
      this.uploads.delete(id);
      if (keep && buffer) this.copies.set(id, Buffer.from(structuredClone(buffer, { transfer: [buffer] })));
    }
  }

  /** Copies of the blobs not here yet, each in a buffer of its own (aligned for typed arrays). */
  private async download(blobs: BlobLocation[]): Promise<void> {
    const missing = new Map<string, BlobLocation>();
    for (const blob of blobs) if (!this.copies.has(blob.id)) missing.set(blob.id, blob);
    if (missing.size === 0) return;
    const targets = new Map<string, Buffer>();
    for (const blob of missing.values()) targets.set(blob.id, Buffer.from(new ArrayBuffer(blob.size)));
    await this.socket.readBlobs([...missing.values()], (id, offset, bytes) => bytes.copy(targets.get(id)!, offset));
    for (const [id, target] of targets) this.copies.set(id, target);
  }
}
