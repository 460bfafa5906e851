/**
 * connect(): the public client, the raw client of client/ plus typed put/get from types/.
 */
import type { Channel } from './client/channel';
import { Client } from './client/client';
import { IpcChannel } from './client/ipc';
import { openReadIndex, type IndexedObject, type ReadIndexReader, type ReadIndexStats } from './client/read-index';
import {
  openPutRing,
  PUT_RING_MAX_BYTES,
  RECORD_BLOB,
  RECORD_TENSOR,
  RECORD_VALUE,
  type PutRing,
} from './client/put-ring';
import { PUT_RING_TENSOR_DTYPES } from './protocol/put-ring-layout';
import type { RpcConnectOptions } from './client/rpc';
import { defaultSocketPath } from './protocol/socket-path';
import { registerBuiltins, resolveHandle } from './types/builtins';
import type { CreateMetadataOptions, MetadataSpec } from './client/objects';
import type { SealOptions } from './client/client';
import { isTrellisError, TrellisError } from './errors';
import { buildBlob, inlineBlobEntry } from './types/blob';
import { buildTensor, dtypeOf, inlineTensorSpec } from './types/tensor';
import type { ObjectHandle } from './client/object-handle';
import { builderFor, isBuiltinBuilder, publishOptions, type Builder, type PutOptions } from './types/registry';
import { buildEncodedValue, buildValue, inlineValueSpec, packValue } from './types/value';
import { indexedObjectViews, NOT_RESOLVED, resolveIndexed } from './types/indexed';
import { preloadArrowLayout } from './types/dataframe';

registerBuiltins();

/** A put with none of these options may go through the put ring (docs/put-ring.md). */
function isBare(options: PutOptions): boolean {
  return (
    options.name === undefined &&
    !options.persist &&
    options.ttl === undefined &&
    (options.labels === undefined || Object.keys(options.labels).length === 0) &&
    (options.parents === undefined || options.parents.length === 0)
  );
}

/** A put ring record's dtype code (R_DTYPE), by a tensor's dtype. */
const RING_DTYPE_CODES = new Map(PUT_RING_TENSOR_DTYPES.map(({ dtype }, code) => [dtype, code]));

/** What a put ring record holds: its kind, the object's bytes, and (a tensor's) the dtype code. */
interface RingPayload {
  kind: number;
  data: Uint8Array;
  dtype: number;
}

/**
 * What a put ring record holds for `value`, or undefined: not a small Buffer, plain Value or
 * TypedArray of the default shape (a tensor only where `ring` takes tensor records).
 * `build` is builderFor(value); `encoded`, a plain Value's packValue bytes when the caller has them.
 */
function ringPayload(
  value: unknown,
  options: PutOptions,
  ring: PutRing | undefined,
  build = builderFor(value),
  encoded?: Buffer,
): RingPayload | undefined {
  if (build === buildBlob) {
    const data = value instanceof ArrayBuffer ? new Uint8Array(value) : (value as Uint8Array);
    return data.byteLength <= PUT_RING_MAX_BYTES ? { kind: RECORD_BLOB, data, dtype: 0 } : undefined;
  }
  if (build === buildTensor) {
    // The ring stores the default shape ([length]) only; a ring not open yet is asked once it is.
    const view = value as ArrayBufferView;
    if (view.byteLength > PUT_RING_MAX_BYTES || options.shape !== undefined || ring?.takesTensors === false)
      return undefined;
    const data = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    return { kind: RECORD_TENSOR, data, dtype: RING_DTYPE_CODES.get(dtypeOf(view)!)! };
  }
  if (build !== buildValue) return undefined;
  const data = encoded ?? packValue(value);
  return data.byteLength <= PUT_RING_MAX_BYTES ? { kind: RECORD_VALUE, data, dtype: 0 } : undefined;
}

export class TrellisClient extends Client {
  /** The daemon's read index (docs/read-index.md), mapped by connect() for a local client. */
  private readIndex?: ReadIndexReader;
  /**
   * Small bare puts with no round trip (docs/put-ring.md): opened at the first one; null when
   * this client has none (RPC, not x86-64, a daemon with rings off).
   */
  private putRing?: PutRing | null;
  private openingRing?: Promise<PutRing | null>;

  constructor(private readonly rawChannel: Channel) {
    super(rawChannel);
    // An RPC client maps nothing, so it has no ring: not even a grant is asked for.
    if (!(rawChannel instanceof IpcChannel)) this.putRing = null;
    this.blobs.ringAccess = { ring: () => this.putRing, open: () => this.openRing() };
  }

  /** Asks the daemon for this client's ring (once; concurrent callers share the request). */
  private async openRing(): Promise<PutRing | null> {
    if (this.putRing !== undefined) return this.putRing;
    try {
      const ring = await (this.openingRing ??= openPutRing(this.rawChannel));
      this.putRing = ring;
      return ring;
    } finally {
      this.openingRing = undefined;
    }
  }

  /**
   * The id of a put written into the put ring, or undefined: put it through the socket (no ring
   * here, or no room for an arena: the socket put then answers as it always did).
   */
  private async ringPut({ kind, data, dtype }: RingPayload): Promise<string | undefined> {
    let ring = this.putRing;
    if (ring === undefined) {
      try {
        ring = await this.openRing();
      } catch (error) {
        if (isTrellisError(error, 'OutOfMemory')) return undefined;
        throw error;
      }
    }
    // A daemon of an earlier version takes no tensor records (known once the ring is open).
    if (ring === null || (kind === RECORD_TENSOR && !ring.takesTensors)) return undefined;
    const id = ring.tryPut(kind, data, dtype);
    if (id !== undefined) return id;
    try {
      return await ring.put(kind, data, dtype);
    } catch (error) {
      if (isTrellisError(error, 'OutOfMemory')) return undefined;
      throw error;
    }
  }

  /** Sync: how gets used the read index (hits, misses, ...); undefined when it is not mapped. */
  get readIndexStats(): Readonly<ReadIndexStats> | undefined {
    return this.readIndex?.stats;
  }

  /** @internal connect() hands the index over once mapped. */
  useReadIndex(reader: ReadIndexReader | undefined): void {
    this.readIndex = reader;
    const holds = (this.indexHolds = reader?.holds);
    if (reader === undefined || holds === undefined) return;
    // A DataFrame from the index only while the built-in arrow resolver is the one registered.
    reader.objectViews = indexedObjectViews;
    // getBlob: a blob's view from the index, pinned by this client's hold (no request).
    this.blobs.indexAccess = {
      view: (id) => {
        const held = holds.holds(id);
        const hit = reader.read(id, false, true);
        return hit === undefined ? undefined : { bytes: hit.bytes, taken: !held };
      },
      letGo: (ids) => holds.releaseAndTell(ids),
    };
  }

  /**
   * Stores a value with the builder that takes it; small values and named puts take one round
   * trip. Errors: TypeMismatch (no builder), NameExists, OutOfMemory, InvalidArgument.
   */
  put(value: unknown, options: PutOptions = {}): Promise<string> {
    // Not an async function: the usual put returns the promise of its one request (or none, from
    // the ring) instead of wrapping it in more. Errors are rejections all the same.
    try {
      const build = builderFor(value);
      // A plain Value is encoded once, for the ring and for the request alike.
      const encoded = build === buildValue ? packValue(value) : undefined;
      if (this.putRing !== null && isBare(options)) {
        const payload = ringPayload(value, options, this.putRing, build, encoded);
        if (payload !== undefined) {
          const id = this.putRing?.tryPut(payload.kind, payload.data, payload.dtype);
          if (id !== undefined) return Promise.resolve(id);
          return this.putAfterRing(value, options, build, encoded, payload);
        }
      }
      return this.putByRequest(value, options, build, encoded);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** The ring is not open yet, or full: it is opened or waited for, else the put is a request. */
  private async putAfterRing(
    value: unknown,
    options: PutOptions,
    build: Builder,
    encoded: Buffer | undefined,
    payload: RingPayload,
  ): Promise<string> {
    const id = await this.ringPut(payload);
    return id ?? this.putByRequest(value, options, build, encoded);
  }

  private putByRequest(
    value: unknown,
    options: PutOptions,
    build: Builder,
    encoded: Buffer | undefined,
  ): Promise<string> {
    const building = encoded !== undefined ? buildEncodedValue(this, encoded, options) : build(this, value, options);
    // Built-in builders apply every option in their creating request (publishOptions), all but a ttl.
    if (isBuiltinBuilder(build) && (options.ttl === undefined || options.ttl === null)) return building;
    return this.finishPut(building, build, options);
  }

  private async finishPut(building: Promise<string>, build: Builder, options: PutOptions): Promise<string> {
    const id = await building;
    // A user's builder may not apply labels and persist: they follow in requests of their own.
    if (!isBuiltinBuilder(build)) {
      if (options.labels !== undefined && Object.keys(options.labels).length > 0) await this.label(id, options.labels);
      if (options.persist && options.ttl === undefined) await this.persist(id);
    }
    // The creating requests carry no ttl: it is set once the object is there.
    if (options.ttl !== undefined && options.ttl !== null) await this.persist(id, { ttl: options.ttl });
    return id;
  }

  /**
   * Puts many values in as few round trips as their kinds allow; `options[i]` applies to
   * `values[i]`. Small bare items (bytes, plain Values, TypedArrays) go through the put ring with
   * no request. Of the rest, small Buffers, Uint8Arrays and ArrayBuffers (up to MAX_INLINE_BLOB_BYTES) go in
   * one putBlobs request; small plain values and small TypedArrays in one createMetadataMany
   * request; each of the two is all or none, and both are sent at once. Anything else is put one
   * by one, concurrently. Resolves to the ids in the order of `values`.
   * Errors: as put; InvalidArgument when `values` is not an array.
   */
  async putMany(values: unknown[], options: PutOptions[] = []): Promise<string[]> {
    if (!Array.isArray(values) || !Array.isArray(options)) {
      throw new TrellisError('InvalidArgument', 'putMany(values, options?): values and options must be arrays');
    }
    const ids: string[] = new Array(values.length);
    const blobs: Array<{ index: number; entry: { data: Uint8Array } & SealOptions; options: PutOptions }> = [];
    const objects: Array<{ index: number; spec: MetadataSpec; create: CreateMetadataOptions; options: PutOptions }> =
      [];
    const others: Array<Promise<void>> = [];
    // Plain Values the ring did not take are sent as encoded for it: msgpack once per value.
    const encoded: Array<Buffer | undefined> = new Array(values.length);
    const ringed = await this.ringPutMany(values, options, ids, encoded);
    values.forEach((value, index) => {
      if (ringed[index]) return;
      const valueOptions = options[index] ?? {};
      // A builder registered for bytes or typed arrays wins over the built-in inline path.
      const entry = inlineBlobEntry(value, valueOptions);
      if (entry && isBuiltinBuilder(builderFor(value))) {
        blobs.push({ index, entry, options: valueOptions });
        return;
      }
      const spec = inlineValueSpec(value, valueOptions, encoded[index]);
      if (spec) {
        objects.push({ index, spec, create: publishOptions(valueOptions), options: valueOptions });
        return;
      }
      const tensor = inlineTensorSpec(value, valueOptions);
      if (tensor && isBuiltinBuilder(builderFor(value)))
        objects.push({ index, spec: tensor.spec, create: tensor.options, options: valueOptions });
      else others.push(this.put(value, valueOptions).then((id) => void (ids[index] = id)));
    });
    const putBlobs = async () => {
      if (blobs.length === 0) return;
      const made = await this.putBlobs(blobs.map(({ entry }) => entry));
      blobs.forEach(({ index }, i) => (ids[index] = made[i]));
    };
    const createObjects = async () => {
      if (objects.length === 0) return;
      const made = await this.createMetadataMany(objects.map(({ spec, create }) => ({ spec, options: create })));
      objects.forEach(({ index }, i) => (ids[index] = made[i]));
    };
    await Promise.all([putBlobs(), createObjects(), ...others]);
    // The creating requests carry no ttl: it is set once the objects are there.
    await Promise.all(
      [...blobs, ...objects].map(({ index, options: o }) =>
        o.ttl !== undefined && o.ttl !== null ? this.persist(ids[index], { ttl: o.ttl }) : undefined,
      ),
    );
    return ids;
  }

  /** Puts the small bare values through the put ring, in order; which ones it took. */
  private async ringPutMany(
    values: unknown[],
    options: PutOptions[],
    ids: string[],
    encoded: Array<Buffer | undefined>,
  ): Promise<boolean[]> {
    const taken: boolean[] = new Array(values.length).fill(false);
    if (this.putRing === null) return taken;
    for (let index = 0; index < values.length; index++) {
      if (!isBare(options[index] ?? {})) continue;
      const build = builderFor(values[index]);
      if (build === buildValue) encoded[index] = packValue(values[index]);
      const payload = ringPayload(values[index], options[index] ?? {}, this.putRing, build, encoded[index]);
      if (payload === undefined) continue;
      const id = this.putRing?.tryPut(payload.kind, payload.data, payload.dtype) ?? (await this.ringPut(payload));
      if (id === undefined) return taken;
      ids[index] = id;
      taken[index] = true;
    }
    return taken;
  }

  /**
   * The values of many objects (by id or name), as get resolves each, from one round trip; all
   * or none. Errors: ObjectNotFound (the message names every id that is missing), NameNotFound,
   * NotSealed, InvalidArgument (not a list of ids or names).
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async getMany(idsOrNames: string[]): Promise<any[]> {
    const local = this.readIndexedMany(idsOrNames);
    if (local !== undefined) return local;
    const handles = await this.getObjects(idsOrNames);
    // A resolver may answer with a promise (one that loads a module on first use).
    return Promise.all(handles.map((handle) => resolveHandle(handle, this)));
  }

  /**
   * Every value from the read index, or undefined as soon as one is not there: then the whole
   * batch goes to the daemon, so its answer (and its errors) stay those of one getObjects, and
   * the holds this batch took go (the views were never handed out; the daemon's answer holds
   * what it gives, and a failed one nothing).
   */
  private readIndexedMany(idsOrNames: unknown): unknown[] | undefined {
    if (this.readIndex === undefined || !Array.isArray(idsOrNames) || idsOrNames.length === 0) return undefined;
    const values: unknown[] = new Array(idsOrNames.length);
    let taken: string[] | undefined;
    // Objects' members are remembered (for release(id)) only once the whole batch is got here: a
    // batch that goes to the daemon got none of them, whether or not its request then fails.
    let objects: Array<[string, string[]]> | undefined;
    try {
      for (let i = 0; i < idsOrNames.length; i++) {
        const id = idsOrNames[i];
        if (typeof id !== 'string') return this.letGoOfNewHolds(taken);
        const held = this.indexHolds?.holds(id) === true;
        // A Buffer comes as a pinned view of shared memory (no copy), as from the daemon.
        const hit = this.readIndex.read(id, false);
        if (!held && this.indexHolds?.holds(id) === true) (taken ??= []).push(id);
        if (hit?.taken !== undefined) (taken ??= []).push(...hit.taken);
        const value = hit === undefined ? NOT_RESOLVED : this.resolveIndexedHit(id, hit, false);
        if (value === NOT_RESOLVED) return this.letGoOfNewHolds(taken);
        if (hit?.kind === 'object') (objects ??= []).push([id, [...hit.views!.keys()]]);
        values[i] = value;
      }
    } catch (error) {
      // A resolver threw: the batch hands out nothing, so it keeps no hold it took.
      this.letGoOfNewHolds(taken);
      throw error;
    }
    if (objects !== undefined) for (const [id, members] of objects) this.rememberObjectBlobs(id, members);
    return values;
  }

  /**
   * A hit as get answers it. An object's members (held through the index) are remembered first
   * (unless `remember` is false: the caller does it once it keeps the value), so that release(id)
   * lets go of them, as of getObject's blobs, even if its resolver throws.
   */
  private resolveIndexedHit(id: string, hit: IndexedObject, remember = true): unknown {
    if (hit.kind !== 'object') return resolveIndexed(id, hit, this);
    if (indexedObjectViews(hit.object!.typename) === undefined) return NOT_RESOLVED;
    if (remember) this.rememberObjectBlobs(id, [...hit.views!.keys()]);
    return resolveIndexed(id, hit, this);
  }

  /** Drops holds taken for views that were not handed out (the get goes to the daemon instead). */
  private letGoOfNewHolds(ids: string[] | undefined): undefined {
    if (ids !== undefined) this.indexHolds?.releaseAndTell(ids);
    return undefined;
  }

  /** Stream chunks that are not bytes (arrow RecordBatches, ...) are put as objects. */
  protected override encodeChunk(chunk: unknown): Promise<string> {
    return this.put(chunk);
  }

  protected override decodeChunk(chunk: ObjectHandle): unknown {
    return resolveHandle(chunk, this);
  }

  /**
   * The value of an object (by id or name), rebuilt by the resolver for its typename; zero-copy
   * where the type allows. With no resolver for the typename, the object handle itself.
   * With `fetch`, an object that lives on another instance is first copied here (migrate).
   * With `version`, that kept version of the name (NameNotFound when it is not kept).
   * With `copy`, a small blob may come back as a private copy (from the read index, with no
   * round trip) instead of a view of shared memory.
   * Errors: ObjectNotFound, NameNotFound, NotSealed; with fetch, as migrate.
   */
  async get(
    idOrName: string,
    options: { fetch?: boolean; version?: number; copy?: boolean } = {},
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
  ): Promise<any> {
    const { fetch = false, version, copy = false } = options;
    // A small sealed Value (copied out) or blob (a pinned view, or with copy a copy) by id, with no
    // round trip when the daemon's read index has it; any miss or doubt asks the daemon below.
    if (this.readIndex !== undefined && version === undefined && !fetch) {
      // From the hold taken to the hold let go (when no built-in resolver takes the hit) this is
      // one synchronous stretch, as are getBlob's and getMany's: no other get of this client can
      // hand out a view the hold pins in between, so letting go of a hold this get took (and only
      // one it took: `held`) never takes one another get counts on.
      const held = this.indexHolds?.holds(idOrName) === true;
      const hit = this.readIndex.read(idOrName, copy);
      if (hit !== undefined) {
        const value = this.resolveIndexedHit(idOrName, hit);
        if (value !== NOT_RESOLVED) return value;
        this.letGoOfNewHolds(hit.taken);
      }
      if (!held && this.indexHolds?.holds(idOrName) === true) this.letGoOfNewHolds([idOrName]);
    }
    // A kept version without fetch is one request: the daemon resolves the version and answers the object.
    if (!fetch) {
      const handle =
        version === undefined ? await this.getObject(idOrName) : await this.getObjectAtVersion(idOrName, version);
      return resolveHandle(handle, this);
    }
    const named = version === undefined ? idOrName : await this.getName(idOrName, { version });
    return resolveHandle(await this.getObject(await this.migrate(named)), this);
  }
}

/** Connects to the daemon at socketPath, $TRELLIS_SOCKET, or the default path. */
export async function connect(socketPath: string = defaultSocketPath()): Promise<TrellisClient> {
  const channel = await IpcChannel.open(socketPath);
  const client = new TrellisClient(channel);
  try {
    client.useReadIndex(await openReadIndex(channel));
  } catch (error) {
    channel.close();
    throw error;
  }
  preloadArrowLayout();
  return client;
}

/**
 * Connects to a daemon's RPC port ('host:port'): the same client, with bytes copied over TCP
 * instead of mapped, for processes on another machine. `{ tls: { ca, cert?, key?, servername? } }`
 * (PEM contents) reaches a daemon started with --rpc-tls-cert; cert and key answer --rpc-tls-ca.
 * Errors: Unavailable, PermissionDenied (token, or a certificate refused either way), InvalidArgument.
 */
export async function connectRpc(endpoint: string, options: RpcConnectOptions = {}): Promise<TrellisClient> {
  // Loaded here, not with trellis: net, tls and the RPC framing are no part of a local client.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy load needs require
  const { RpcChannel } = require('./client/rpc') as typeof import('./client/rpc');
  return new TrellisClient(await RpcChannel.open(endpoint, options));
}
