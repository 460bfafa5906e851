/**
 * Blobs: raw bytes in shared memory. A BlobWriter's buffer is writable until seal or abort;
 * after that it is detached (zero-length), so the creator cannot change what others read.
 * A new blob's bytes are not cleared (like malloc): write all of them.
 * Sealing keeps a reference for the creator, like any get, so its own getBlob costs no trip.
 */
import { TrellisError } from '../errors';
import { native } from '../native';
import type { BlobLocation } from '../protocol/messages';
import type { Channel } from './channel';

export interface Blob {
  readonly id: string;
  readonly size: number;
  /** A view of the shared memory: no copy, read-only. */
  readonly buffer: Buffer;
}

export class BlobWriter {
  readonly id: string;
  readonly size: number;
  /** Writable bytes of exactly `size`, until seal or abort. */
  readonly buffer: Buffer;
  private state: 'open' | 'sealed' | 'aborted' = 'open';

  constructor(
    private readonly blobs: BlobCache,
    private readonly location: BlobLocation,
    private readonly arrayBuffer: ArrayBuffer,
  ) {
    this.id = location.id;
    this.size = location.size;
    this.buffer = Buffer.from(arrayBuffer, 0, location.size);
  }

  get sealed(): boolean {
    return this.state === 'sealed';
  }

  /** Makes the blob immutable and visible to others. Errors: AlreadySealed, ConnectionClosed. */
  async seal(): Promise<string> {
    this.ensureOpen('seal');
    const { id } = await this.blobs.channel.request('seal', { id: this.id });
    this.sealedElsewhere();
    this.blobs.remember(this.location);
    return id;
  }

  /** Gives the memory back; the id never becomes visible. */
  async abort(): Promise<void> {
    this.ensureOpen('abort');
    this.finish('aborted');
    await this.blobs.channel.request('abort', { id: this.id });
  }

  /** For requests that seal this blob as part of something else (createMetadata). */
  sealedElsewhere(): void {
    this.ensureOpen('seal');
    this.finish('sealed');
  }

  private ensureOpen(verb: string): void {
    if (this.state !== 'open') {
      throw new TrellisError(this.state === 'sealed' ? 'AlreadySealed' : 'ObjectNotFound', `cannot ${verb} blob ${this.id}: it was already ${this.state}`);
    }
  }

  private finish(state: 'sealed' | 'aborted'): void {
    this.state = state;
    native.detach(this.arrayBuffer);
  }
}

/**
 * Blobs this client holds a reference to, so a repeated get needs no round trip. One reference
 * per blob per client: release(id) drops it for every user of that blob in this process.
 */
export class BlobCache {
  private readonly held = new Map<string, BlobLocation>();

  constructor(readonly channel: Channel) {}

  remember(location: BlobLocation): void {
    this.held.set(location.id, location);
  }

  forget(ids: string[]): void {
    for (const id of ids) this.held.delete(id);
    this.channel.forget(ids);
  }

  /** One round trip for all of them; all or none. Errors: InvalidArgument, OutOfMemory. */
  async create(sizes: number[], typename?: string): Promise<BlobWriter[]> {
    for (const size of sizes) {
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new TrellisError('InvalidArgument', `createBlob(size): size must be a non-negative integer, got ${size}`);
      }
    }
    const { blobs } = await this.channel.request('createBlobs', typename === undefined ? { sizes } : { sizes, typename });
    return blobs.map((location) => new BlobWriter(this, location, this.channel.writable(location)));
  }

  /** Views of sealed blobs, taking a reference to each; one round trip for all that are not held. */
  async get(ids: string[]): Promise<Blob[]> {
    const missing = ids.filter((id) => !this.held.has(id));
    if (missing.length > 0) {
      const { blobs } = await this.channel.request('getBlobs', { ids: [...new Set(missing)] });
      for (const blob of blobs) this.held.set(blob.id, blob);
    }
    return ids.map((id) => this.view(this.held.get(id)!));
  }

  view(location: BlobLocation): Blob {
    return { id: location.id, size: location.size, buffer: this.channel.view(location) };
  }
}
