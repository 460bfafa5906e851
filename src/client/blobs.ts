/**
 * Blobs: raw bytes in shared memory. A BlobWriter's buffer is writable until seal or abort.
 * Seal detaches the writable ArrayBuffer (so the creator cannot change what others read) and
 * from then on `buffer` is a read-only view of the same bytes, the one getBlob gives: writers
 * checksum or read back what they sealed. A Buffer taken from `buffer` before the seal is
 * detached with it (length 0): take `buffer` again after the seal.
 * A new blob's bytes are not cleared (like malloc): write all of them.
 * Sealing keeps a reference for the creator, like any get, so its own getBlob costs no trip.
 */
import { TrellisError } from '../errors';
import { native } from '../native';
import type { BlobLocation, SealRequest } from '../protocol/messages';
import { detachedId } from '../protocol/ids';
import { PUT_RING_MAX_BYTES } from '../protocol/put-ring-layout';
import { isUnknownKind } from '../protocol/unknown-kind';
import type { Channel } from './channel';
import type { PutRing } from './put-ring';

/** The client's put ring, for small createBlob and seal with no round trip (docs/put-ring.md). */
export interface RingAccess {
  /** The ring; null when there is none to use, undefined when not asked for yet. */
  ring(): PutRing | null | undefined;
  /** Asks for it. Errors: OutOfMemory, ConnectionClosed. */
  open(): Promise<PutRing | null>;
}

/**
 * The read index, for getBlob with no request (docs/read-index.md): a sealed blob's bytes as a
 * view of shared memory, pinned by this client's hold on it until release, delete or disconnect.
 */
export interface IndexAccess {
  /** The view, or undefined: ask the daemon. `taken`: a hold was taken now (none was held before). */
  view(id: string): { bytes: Buffer; taken: boolean } | undefined;
  /** Lets go of holds taken for views never handed out (a getBlobs whose request failed). */
  letGo(ids: string[]): void;
}

export interface Blob {
  readonly id: string;
  readonly size: number;
  /** A view of the shared memory: no copy, read-only. */
  readonly buffer: Buffer;
}

export class BlobWriter {
  readonly id: string;
  readonly size: number;
  /**
   * Writable bytes of exactly `size`, until seal or abort. A writer made `fillOnly` (a stream's
   * chunk) makes them only if `buffer` is asked for, so that fill() makes no ArrayBuffer.
   */
  private writableBytes: Buffer | undefined;
  private arrayBuffer: ArrayBuffer | undefined;
  /** The read-only view after seal(), made when first asked for. */
  private sealedView: Buffer | undefined;
  /**
   * sealing: seal() is on its way (a second seal or an abort must wait for its outcome);
   * sealedUnheld: sealed by a request that keeps no reference for this client (sealBlob,
   * createMetadata, a stream write), so there is no view to hand out.
   */
  private state: 'open' | 'sealing' | 'sealed' | 'sealedUnheld' | 'aborted' = 'open';

  /** `ring`: the blob was made through the put ring, so a plain seal() goes through it too. */
  constructor(
    private readonly blobs: BlobCache,
    private readonly location: BlobLocation,
    private readonly ring?: PutRing,
    fillOnly = false,
  ) {
    this.id = location.id;
    this.size = location.size;
    // Over RPC, the channel keeps what writable() gives for the upload at seal: a blob sealed
    // unwritten still has bytes to upload and a local copy to view.
    if (!fillOnly) this.makeWritable();
  }

  /**
   * Writable until seal or abort; after seal(), a read-only view of the sealed bytes (no copy).
   * Errors (after abort, or after a seal that kept no reference): ObjectNotFound, InvalidArgument.
   */
  get buffer(): Buffer {
    if (this.state === 'open' || this.state === 'sealing') return this.writableBytes ?? this.makeWritable();
    if (this.state === 'sealed') return (this.sealedView ??= this.blobs.channel.view(this.location));
    if (this.state === 'aborted') {
      throw new TrellisError('ObjectNotFound', `blob ${this.id} was aborted: its buffer is gone`);
    }
    throw new TrellisError(
      'InvalidArgument',
      `blob ${this.id} was sealed without a reference for its writer (by sealBlob, createMetadata or a ` +
        `stream write), so the writer has no view of it: read it with client.getBlob('${this.id}')`,
    );
  }

  /**
   * Copies `bytes` to the start of the blob, as `buffer.set(bytes)` would, but without making the
   * blob's ArrayBuffer: V8 counts those bytes as this process's and collects garbage every few
   * dozen MiB of them, which a stream writer of 1 MiB chunks paid in ~20% of its CPU. Errors
   * (after seal or abort): AlreadySealed, ObjectNotFound; InvalidArgument when they do not fit.
   */
  fill(bytes: Uint8Array): void {
    this.ensureOpen('fill');
    if (bytes.byteLength > this.size)
      throw new TrellisError(
        'InvalidArgument',
        `${bytes.byteLength} bytes do not fit in blob ${this.id} of ${this.size}`,
      );
    if (this.writableBytes !== undefined) this.writableBytes.set(bytes);
    else this.blobs.channel.fill(this.location, bytes);
  }

  private makeWritable(): Buffer {
    this.arrayBuffer = this.blobs.channel.writable(this.location);
    return (this.writableBytes = Buffer.from(this.arrayBuffer, 0, this.size));
  }

  get sealed(): boolean {
    return this.state === 'sealed' || this.state === 'sealedUnheld';
  }

  /**
   * Makes the blob immutable and visible to others, with its labels and lineage parents (ids or
   * names). Errors: AlreadySealed, ObjectNotFound, ConnectionClosed, InvalidArgument, NameNotFound.
   */
  async seal(options: { labels?: Record<string, string>; parents?: string[] } = {}): Promise<string> {
    this.ensureOpen('seal');
    this.state = 'sealing';
    if (this.ring !== undefined && options.labels === undefined && (options.parents ?? []).length === 0) {
      try {
        // A record in the ring: the daemon seals it before it handles any later request.
        await this.ring.seal(this.id);
      } catch (error) {
        this.state = 'open';
        throw error;
      }
      this.finish('sealed');
      this.blobs.remember(this.location);
      return this.id;
    }
    let id: string;
    const request: SealRequest = { id: this.id };
    if (options.labels !== undefined) request.labels = options.labels;
    if (options.parents !== undefined && options.parents.length > 0) request.parents = options.parents;
    try {
      ({ id } = await this.blobs.channel.request('seal', request));
    } catch (error) {
      // Still ours and writable (the daemon refused or never answered): seal may be retried.
      this.state = 'open';
      throw error;
    }
    this.finish('sealed');
    this.blobs.remember(this.location);
    return id;
  }

  /** Gives the memory back; the id never becomes visible. Errors: AlreadySealed, ObjectNotFound. */
  async abort(): Promise<void> {
    this.abortedElsewhere();
    await this.blobs.channel.request('abort', { id: this.id });
  }

  /** For a request that aborts this blob with others (BlobCache.abortQuietly): the buffer goes now. */
  abortedElsewhere(): void {
    this.ensureOpen('abort');
    this.finish('aborted');
  }

  /** A single `abort` for a blob already marked aborted: the many-blob request could not be used. */
  abortAlone(): Promise<unknown> {
    return this.blobs.channel.request('abort', { id: this.id });
  }

  /**
   * A request that seals this blob as part of something else (sealBlob, createMetadata) is on its
   * way: a seal() meanwhile fails with AlreadySealed here, as it would at the daemon. Else a
   * plain seal() would be a put ring record that finds the blob sealed, which is only ever a
   * hand-written client's: the daemon disconnects it.
   */
  sealingElsewhere(): void {
    this.ensureOpen('seal');
    this.state = 'sealing';
  }

  /** That request failed: the blob is still ours and writable. */
  notSealedElsewhere(): void {
    if (this.state === 'sealing') this.state = 'open';
  }

  /** For requests that seal this blob as part of something else, keeping no reference (createMetadata). */
  sealedElsewhere(): void {
    if (this.state !== 'sealing') this.ensureOpen('seal');
    this.finish('sealedUnheld');
  }

  private ensureOpen(verb: string): void {
    if (this.state === 'open') return;
    const [code, why] =
      this.state === 'aborted'
        ? (['ObjectNotFound', 'it was aborted'] as const)
        : this.state === 'sealing'
          ? (['AlreadySealed', 'a seal() of it is already under way'] as const)
          : (['AlreadySealed', 'it was already sealed'] as const);
    throw new TrellisError(code, `cannot ${verb} blob ${this.id}: ${why}`);
  }

  private finish(state: 'sealed' | 'sealedUnheld' | 'aborted'): void {
    this.state = state;
    if (this.arrayBuffer !== undefined) native.detach(this.arrayBuffer);
  }
}

/**
 * Runs a request that seals `writers` as part of something else (sealBlob, createMetadata),
 * keeping no reference: they are marked as being sealed while it is on its way, sealed when it
 * succeeds, and writable again when it fails. Errors: the request's, or AlreadySealed or
 * ObjectNotFound for a writer already sealed or aborted (before anything is sent).
 */
export async function sealingElsewhere<T>(writers: readonly BlobWriter[], request: () => Promise<T>): Promise<T> {
  const unique = [...new Set(writers)];
  const marked: BlobWriter[] = [];
  let result: T;
  try {
    for (const writer of unique) {
      writer.sealingElsewhere();
      marked.push(writer);
    }
    result = await request();
  } catch (error) {
    for (const writer of marked) writer.notSealedElsewhere();
    throw error;
  }
  for (const writer of unique) writer.sealedElsewhere();
  return result;
}

/**
 * Blobs this client holds a reference to, so a repeated get needs no round trip. One reference
 * per blob per client: release(id) drops it for every user of that blob in this process.
 */
export class BlobCache {
  private readonly held = new Map<string, BlobLocation>();
  /**
   * Views got from the read index: held by this client's hold on each, as `held` by a reference,
   * so a repeated getBlob hands the same view out with no lookup until release or delete.
   */
  private readonly indexed = new Map<string, Buffer>();
  /** Whether the daemon knows abortBlobs: undefined until it answered one (an older daemon does not). */
  private abortBlobsKnown: boolean | undefined;
  /** Set by a client that may have a put ring (connect.ts). */
  ringAccess?: RingAccess;
  /** Set by a client that maps the daemon's read index (connect.ts). */
  indexAccess?: IndexAccess;

  constructor(readonly channel: Channel) {}

  /** Kept until release: `location`, decoded from a reply, is made to keep nothing else alive (detachedId). */
  remember(location: BlobLocation): BlobLocation {
    const id = detachedId(location.id);
    const kept = {
      id,
      segment: location.segment,
      offset: location.offset,
      size: location.size,
    };
    this.held.set(id, kept);
    return kept;
  }

  forget(ids: string[]): void {
    for (const id of ids) {
      this.held.delete(id);
      this.indexed.delete(id);
    }
    this.channel.forget(ids);
  }

  /**
   * One round trip for all of them; all or none. `fillOnly`: the caller only fill()s them (see
   * BlobWriter.fill). Errors: InvalidArgument, OutOfMemory.
   */
  async create(sizes: number[], typename?: string, fillOnly = false): Promise<BlobWriter[]> {
    for (const size of sizes) {
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new TrellisError('InvalidArgument', `createBlob(size): size must be a non-negative integer, got ${size}`);
      }
    }
    const made = sizes.length === 1 && typename === undefined ? await this.createInRing(sizes[0], fillOnly) : undefined;
    if (made !== undefined) return [made];
    const { blobs } = await this.channel.request(
      'createBlobs',
      typename === undefined ? { sizes } : { sizes, typename },
    );
    return blobs.map((location) => new BlobWriter(this, location, undefined, fillOnly));
  }

  /** A small blob made in the put ring, with no round trip; undefined: make it with a request. */
  private async createInRing(size: number, fillOnly: boolean): Promise<BlobWriter | undefined> {
    if (this.ringAccess === undefined || size > PUT_RING_MAX_BYTES) return undefined;
    let ring = this.ringAccess.ring();
    if (ring === undefined) {
      try {
        ring = await this.ringAccess.open();
      } catch (error) {
        // No room for an arena: createBlobs answers as it always did.
        if (error instanceof TrellisError && error.code === 'OutOfMemory') return undefined;
        throw error;
      }
    }
    const location = ring?.tryCreate(size);
    if (ring === null || location === undefined) return undefined;
    return new BlobWriter(this, location, ring, fillOnly);
  }

  /**
   * Gives back the open writers among `writers` in one request, quietly: a caller that has no
   * more use for them (a finishing stream writer) is not told of an abort that failed (a closed
   * client's blobs go anyway). From a daemon without abortBlobs, or when the batch is refused as
   * a whole, one abort each, so that the others still go.
   */
  async abortQuietly(writers: readonly BlobWriter[]): Promise<void> {
    const open: BlobWriter[] = [];
    for (const writer of writers) {
      try {
        writer.abortedElsewhere();
        open.push(writer);
      } catch {
        // Sealed or aborted already: nothing of it to give back.
      }
    }
    if (open.length === 0) return;
    if (open.length > 1 && this.abortBlobsKnown !== false) {
      try {
        await this.channel.request('abortBlobs', {
          ids: open.map((writer) => writer.id),
        });
        this.abortBlobsKnown = true;
        return;
      } catch (error) {
        if (isUnknownKind(error)) this.abortBlobsKnown = false;
      }
    }
    await Promise.all(open.map((writer) => writer.abortAlone().catch(() => {})));
  }

  /**
   * Writers for unsealed blobs of this client that the daemon made without a createBlobs (a
   * stream's recycled chunks and reader cursor); `fillOnly` as in create.
   */
  adopt(locations: BlobLocation[], fillOnly = false): BlobWriter[] {
    return locations.map((location) => new BlobWriter(this, location, undefined, fillOnly));
  }

  /**
   * Views of sealed blobs, taking a reference (or a read-index hold) to each. When the read index
   * has every one not held yet, no request is made; else one round trip for all of them, and the
   * holds this call took are let go first (at once, so that no other get in this process can have
   * handed out a view that one of them pins meanwhile; the daemon's answer holds what it gives).
   */
  async get(ids: string[]): Promise<Blob[]> {
    const found = this.indexAccess === undefined ? undefined : this.fromIndex(this.indexAccess, ids);
    if (found === undefined) {
      const missing = ids.filter((id) => !this.held.has(id) && !this.indexed.has(id));
      if (missing.length > 0) {
        const { blobs } = await this.channel.request('getBlobs', {
          ids: [...new Set(missing)],
        });
        for (const blob of blobs) this.remember(blob);
      }
    }
    return ids.map((id) => {
      const bytes = this.indexed.get(id);
      return bytes !== undefined ? { id, size: bytes.byteLength, buffer: bytes } : this.view(this.held.get(id)!);
    });
  }

  /** Views from the read index of every id not held yet (remembered), or undefined: ask the daemon. */
  private fromIndex(index: IndexAccess, ids: string[]): Map<string, Buffer> | undefined {
    let found: Map<string, Buffer> | undefined;
    let taken: string[] | undefined;
    for (const id of ids) {
      if (this.held.has(id) || this.indexed.has(id) || found?.has(id)) continue;
      const hit = index.view(id);
      if (hit === undefined) {
        if (taken !== undefined) index.letGo(taken);
        return undefined;
      }
      (found ??= new Map()).set(id, hit.bytes);
      if (hit.taken) (taken ??= []).push(id);
    }
    if (found !== undefined) for (const [id, bytes] of found) this.indexed.set(id, bytes);
    return found ?? new Map();
  }

  view(location: BlobLocation): Blob {
    return {
      id: location.id,
      size: location.size,
      buffer: this.channel.view(location),
    };
  }
}
