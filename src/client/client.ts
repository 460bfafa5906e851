/**
 * The raw client: blobs, metadata objects and names over the daemon's socket. Typed put/get
 * live in connect.ts, on top of this; this file never imports from types/.
 */
import { TrellisError } from '../errors';
import {
  MAX_INLINE_BLOB_BYTES,
  type InlineBlob,
  type DaemonStatus,
  type LineageEntry,
  type NameVersion,
  type ObjectMeta,
  type ObjectSummary,
  type PutGlobalRequest,
  type RequestOf,
} from '../protocol/messages';
import { BlobCache, sealingElsewhere, type Blob, type BlobWriter } from './blobs';
import type { IndexHolds } from './index-holds';
import type { Channel } from './channel';
import { CoalescingChannel } from './coalescing-channel';
import { Cluster, type ClusterInfo, type PersistOptions } from './cluster';
import { checkId, Names, type GetNameOptions, type PutNameOptions } from './names';
import { checkName } from '../protocol/names';
import type { ObjectHandle } from './object-handle';
import type { ArchiveClient, ExportArchiveOptions, ImportArchiveOptions } from './archive/archive-client';
import { StreamReader, StreamWriter } from './streams';
import { checkParents, Objects, type CreateMetadataOptions, type MetadataSpec } from './objects';
import { publishOptions, type PutOptions } from '../types/registry';

/** putGlobal's options: a put's, but for the shape. */
export type PutGlobalOptions = Pick<PutOptions, 'name' | 'override' | 'labels' | 'persist' | 'ttl' | 'parents'>;

export interface DeleteOptions {
  /** Also delete members nothing else refers to (default true). */
  deep?: boolean;
  /** Delete even when a name or another object still refers to it (default false). */
  force?: boolean;
}

/** What a seal (sealBlob, a put of bytes) publishes and records in its one round trip. */
export interface SealOptions {
  name?: string;
  override?: boolean;
  /** In a cluster: make it visible cluster-wide (a name implies it); durable with --data-dir. */
  persist?: boolean;
  labels?: Record<string, string>;
  /** Lineage: the objects (ids or names) this one was made from. */
  parents?: string[];
}

/** One putBlobs entry as the daemon takes it: only the keys that are set. */
function inlineBlobRequest(entry: { data: Uint8Array } & SealOptions): InlineBlob {
  const { data } = entry;
  if (!(data instanceof Uint8Array)) {
    throw new TrellisError(
      'InvalidArgument',
      `putBlobs: data must be a Uint8Array or Buffer, got ${describeArgument(data)}`,
    );
  }
  if (data.byteLength > MAX_INLINE_BLOB_BYTES) {
    throw new TrellisError(
      'InvalidArgument',
      `putBlobs: a blob of ${data.byteLength} bytes is over the ${MAX_INLINE_BLOB_BYTES}-byte limit for bytes inside a ` +
        'request: use createBlob',
    );
  }
  const request: InlineBlob = { data };
  if (entry.name !== undefined) request.name = checkName(entry.name);
  if (entry.override !== undefined) request.override = entry.override;
  if (entry.persist) request.persist = true;
  if (entry.labels !== undefined) request.labels = entry.labels;
  if (entry.parents !== undefined && entry.parents.length > 0) request.parents = checkParents(entry.parents);
  return request;
}

/** An entry with nothing but its bytes (inlineBlobRequest sets only the keys given). */
function isBytesOnly(entry: InlineBlob): boolean {
  for (const key in entry) if (key !== 'data') return false;
  return true;
}

function idsOf(reply: { ids: string[] }): string[] {
  return reply.ids;
}

/** One Buffer of all the bytes, in order: a single one is sent as it is. */
function concatBytes(datas: Uint8Array[]): Uint8Array {
  return datas.length === 1 ? datas[0] : Buffer.concat(datas);
}

function describeArgument(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? (value.constructor?.name ?? 'an object') : typeof value;
}

export class Client {
  protected readonly blobs: BlobCache;
  private readonly objects: Objects;
  private readonly names: Names;
  private readonly cluster: Cluster;

  protected readonly channel: Channel;
  /** Blobs this client got as pinned views from the read index (set by connect.ts). */
  protected indexHolds?: IndexHolds;

  constructor(channel: Channel) {
    // Gets in flight together travel as one request (coalescing-channel.ts).
    this.channel = new CoalescingChannel(channel);
    this.blobs = new BlobCache(this.channel);
    this.objects = new Objects(this.channel, this.blobs);
    this.names = new Names(this.channel);
    this.cluster = new Cluster(this.channel);
  }

  get instanceId(): number {
    return this.channel.instanceId;
  }

  /** The daemon's socket path, or host:port for a client from connectRpc. */
  get socketPath(): string {
    return this.channel.endpoint;
  }

  // Blobs

  /** A writable blob of exactly `size` bytes; `typename` labels a type stored as one blob. */
  async createBlob(size: number, options: { typename?: string } = {}): Promise<BlobWriter> {
    return (await this.blobs.create([size], options.typename))[0];
  }

  /** Several writable blobs in one round trip; all or none. */
  createBlobs(sizes: number[], options: { typename?: string } = {}): Promise<BlobWriter[]> {
    return this.blobs.create(sizes, options.typename);
  }

  /**
   * Seals a writer without keeping a reference, with its labels and parents, optionally
   * publishing it (a name, persist), in one round trip (what put does).
   * Errors: AlreadySealed, NameExists, InvalidArgument, ObjectNotFound/NameNotFound (a parent).
   */
  async sealBlob(writer: BlobWriter, options: SealOptions = {}): Promise<string> {
    const request: RequestOf<'seal'> = { id: writer.id, hold: false };
    if (options.name !== undefined) request.name = checkName(options.name);
    if (options.override !== undefined) request.override = options.override;
    if (options.persist) request.persist = true;
    if (options.labels !== undefined) request.labels = options.labels;
    if (options.parents !== undefined && options.parents.length > 0) request.parents = checkParents(options.parents);
    const { id } = await sealingElsewhere([writer], () => this.channel.request('seal', request));
    return id;
  }

  /**
   * Small blobs whose bytes go in the request (each at most MAX_INLINE_BLOB_BYTES), all in one
   * round trip, all or none: the daemon copies them into shared memory and seals them, keeping
   * no reference for this client (as sealBlob). Each entry may carry what a seal carries.
   * Errors: InvalidArgument (naming the entry, or the size limit), OutOfMemory, NameExists,
   * ObjectNotFound/NameNotFound (a parent).
   */
  putBlobs(blobs: Array<{ data: Uint8Array } & SealOptions>): Promise<string[]> {
    // Not async: the promise returned is the request's own (a put of a small Buffer comes here).
    let request: RequestOf<'putBlobs'>;
    try {
      if (blobs.length === 0) return Promise.resolve([]);
      const entries = blobs.map(inlineBlobRequest);
      // Bytes alone (a putMany of Buffers): the compact form, one bin for all of them.
      const bytesOnly = entries.every(isBytesOnly);
      request = bytesOnly
        ? {
            sizes: entries.map((entry) => entry.data.byteLength),
            data: concatBytes(entries.map((entry) => entry.data)),
          }
        : { blobs: entries };
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.channel.request('putBlobs', request).then(idsOf);
  }

  /** Errors: ObjectNotFound, NotSealed, TypeMismatch, InvalidArgument. */
  async getBlob(id: string): Promise<Blob> {
    return (await this.blobs.get([checkId(id)]))[0];
  }

  async getBlobs(ids: string[]): Promise<Blob[]> {
    return this.blobs.get(ids.map(checkId));
  }

  /** Drops this client's reference (and, for an object, its blobs'); views must not be used after. */
  async release(idOrIds: string | string[]): Promise<void> {
    const ids = this.objects.expand(toList(idOrIds).map(checkId));
    this.blobs.forget(ids);
    // Read-index holds go here; the daemon hears of them only when it waits on one.
    const indexSlots = this.indexHolds?.release(ids);
    await this.channel.request('release', indexSlots && indexSlots.length > 0 ? { ids, indexSlots } : { ids });
  }

  // Objects

  /** Errors: InvalidArgument, ObjectNotFound, NotSealed, NameExists. */
  createMetadata(spec: MetadataSpec, options?: CreateMetadataOptions): Promise<string> {
    return this.objects.create(spec, options);
  }

  /** Several metadata objects in one round trip; all or none. */
  createMetadataMany(entries: Array<{ spec: MetadataSpec; options?: CreateMetadataOptions }>): Promise<string[]> {
    return this.objects.createMany(entries);
  }

  /** The object and views of all its blobs, in one round trip. Errors: ObjectNotFound, NameNotFound. */
  getObject(idOrName: string): Promise<ObjectHandle> {
    return this.objects.get(checkRef(idOrName));
  }

  /**
   * Several objects (by id or name) and views of all their blobs, in one round trip; all or none.
   * Errors: ObjectNotFound (naming every one missing), NameNotFound, NotSealed, InvalidArgument.
   */
  getObjects(idsOrNames: string[]): Promise<ObjectHandle[]> {
    if (!Array.isArray(idsOrNames)) {
      throw new TrellisError(
        'InvalidArgument',
        `getMany(ids): ids must be a list of object ids or names, got ${describeArgument(idsOrNames)}`,
      );
    }
    return this.objects.getMany(idsOrNames.map(checkRef));
  }

  /** getObject of a kept version of a name, in one round trip (get's `version`). Errors: NameNotFound. */
  protected getObjectAtVersion(name: string, version: number): Promise<ObjectHandle> {
    return this.objects.get(checkRef(name), version);
  }

  /** An object got from the read index: release(id) lets go of these member blobs too. */
  protected rememberObjectBlobs(id: string, blobIds: string[]): void {
    this.objects.rememberBlobs(id, blobIds);
  }

  /** The plain metadata tree. Errors: ObjectNotFound, NameNotFound. */
  getMeta(idOrName: string): Promise<ObjectMeta> {
    return this.objects.meta(checkRef(idOrName));
  }

  /** Errors: ObjectNotFound, NotSealed, Conflict (still named or a member; pass force). */
  async delete(idOrIds: string | string[], options: DeleteOptions = {}): Promise<void> {
    const ids = toList(idOrIds).map(checkId);
    const { deleted } = await this.channel.request('delete', {
      ids,
      deep: options.deep ?? true,
      force: options.force ?? false,
    });
    const gone = this.objects.expand(deleted);
    this.blobs.forget(gone);
    // As the daemon drops the deleter's references, the deleter drops its read-index holds.
    this.indexHolds?.releaseAndTell(gone);
  }

  async exists(id: string): Promise<boolean> {
    return (await this.channel.request('exists', { id: checkId(id) })).exists;
  }

  /** Sealed objects, newest first; `labels`: only objects carrying every pair given. */
  async listObjects(
    options: { pattern?: string; labels?: Record<string, string>; limit?: number } = {},
  ): Promise<ObjectSummary[]> {
    return (await this.channel.request('listObjects', options)).objects;
  }

  /**
   * Merges labels into a sealed object (by id or name): a string sets a label, null removes it.
   * The bytes, the id and an export's topHash stay as they are; a persisted object's record is
   * written again (etcd, --data-dir). Resolves to the object's labels now.
   * Errors: ObjectNotFound, NameNotFound, InvalidArgument (naming the label), RemoteObject
   * (another instance's object: label it there), Unavailable.
   */
  async label(idOrName: string, labels: Record<string, string | null>): Promise<Record<string, string>> {
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
      throw new TrellisError(
        'InvalidArgument',
        `label(idOrName, labels): labels must be a map of strings (or null), got ${JSON.stringify(labels)}`,
      );
    }
    return (await this.channel.request('label', { ref: checkRef(idOrName), labels })).labels;
  }

  /**
   * The object (by id or name) and the objects it was made from, breadth first, the object at
   * depth 0, each once: `[{ depth, id, typename, name?, version?, missing }]`. A parent deleted
   * since is `missing: true` with typename null. Errors: ObjectNotFound, NameNotFound, InvalidArgument.
   */
  async lineage(idOrName: string, options: { maxDepth?: number } = {}): Promise<LineageEntry[]> {
    const request: RequestOf<'lineage'> = { ref: checkRef(idOrName) };
    if (options.maxDepth !== undefined) request.maxDepth = options.maxDepth;
    return (await this.channel.request('lineage', request)).entries;
  }

  // Archives (docs/archive-format.md)

  /**
   * Writes the object (by id or name) as an archive at `path`: a directory (created; it must
   * not exist or be empty) or a file ending in `.tar`. `bytes` is the archive's size.
   * Errors: ObjectNotFound, NameNotFound, InvalidArgument (a stream, a path in the way), IOError.
   */
  exportArchive(
    idOrName: string,
    path: string,
    options?: ExportArchiveOptions,
  ): Promise<{ topHash: string; bytes: number }> {
    // Archive code (tar, hashing, file I/O) loads at the first export or import, not with the client.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy load needs require
    const { exportArchive } = require('./archive/export') as typeof import('./archive/export');
    return exportArchive(this.archiveClient(), checkRef(idOrName), checkPath(path), options);
  }

  /**
   * Stores the archive at `path` once every blob and its topHash check out; content this daemon
   * already has is not stored again (`existed: true`).
   * Errors: IOError, ParseError, HashMismatch, OutOfMemory, NameExists.
   */
  importArchive(
    path: string,
    options?: ImportArchiveOptions,
  ): Promise<{ id: string; topHash: string; existed: boolean }> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy load needs require
    const { importArchive } = require('./archive/import') as typeof import('./archive/import');
    return importArchive(this.archiveClient(), checkPath(path), options);
  }

  private archiveClient(): ArchiveClient {
    return {
      instanceId: this.instanceId,
      request: (kind, body) => this.channel.request(kind, body),
      getObject: (id) => this.getObject(id),
      release: (id) => this.release(id),
      createBlobs: (sizes, options) => this.createBlobs(sizes, options),
      putName: async (id, name, options) => void (await this.putName(id, name, options)),
    };
  }

  // The cluster

  /**
   * The instances of the cluster as this daemon sees them (just itself without --etcd). Async,
   * unlike API.md's sketch: the daemon answers from its cached view, in one round trip.
   */
  clusterInfo(): Promise<ClusterInfo> {
    return this.cluster.info();
  }

  /**
   * Makes an object and its members visible to every instance of the cluster (naming an object
   * does this too); with `ttl` seconds, deleted everywhere once they pass. Alone, every client
   * already sees every object, and only the ttl has an effect.
   * Errors: ObjectNotFound, NotSealed, InvalidArgument, RemoteObject (a ttl for another
   * instance's object), Unavailable (etcd unreachable).
   */
  persist(id: string, options?: PersistOptions): Promise<void> {
    return this.cluster.persist(id, options);
  }

  // Objects on other instances

  /**
   * The id of a local copy of an object that lives on another instance (by id or name), made by
   * the daemon copying it from its owner; a local object answers with itself. Migrating the same
   * object again is free while the copy lives.
   * Errors: ObjectNotFound, NameNotFound, Unavailable (owner unknown or unreachable), OutOfMemory.
   */
  async migrate(idOrName: string): Promise<string> {
    return (await this.channel.request('migrate', { ref: checkRef(idOrName) })).id;
  }

  /**
   * A global object: `typename` over members that may live on several instances (ids, local or
   * remote; an array is keyed p0, p1, ...). Reading it lists every member's metadata; fetch the
   * members wanted with get(id, { fetch: true }) or migrate.
   * Errors: ObjectNotFound, Unavailable, InvalidArgument, NameExists.
   */
  async putGlobal(
    typename: string,
    memberIds: string[] | Record<string, string>,
    fields: Record<string, unknown> = {},
    options: PutGlobalOptions = {},
  ): Promise<string> {
    const entries = Array.isArray(memberIds)
      ? memberIds.map((id, i): [string, string] => [`p${i}`, id])
      : Object.entries(memberIds);
    const members = Object.fromEntries(entries.map(([key, id]) => [key, checkId(id)]));
    // The options every put takes, in its one creating request, as the built-in builders do.
    const { name, parents, ...published } = publishOptions(options);
    const request: PutGlobalRequest = { typename, members, fields, ...published };
    if (options.labels !== undefined) request.labels = options.labels;
    if (name !== undefined) request.name = checkName(name);
    if (parents !== undefined && parents.length > 0) request.parents = checkParents(parents);
    const { id } = await this.channel.request('putGlobal', request);
    // As put: the creating request carries no ttl, it is set once the object is there.
    if (options.ttl !== undefined && options.ttl !== null) await this.persist(id, { ttl: options.ttl });
    return id;
  }

  // Names

  /** Returns the name's new version (its current one when it already pointed to `id`). */
  putName(id: string, name: string, options?: PutNameOptions): Promise<number> {
    return this.names.put(id, name, options);
  }

  putNames(names: Record<string, string>, options?: { override?: boolean }): Promise<Record<string, number>> {
    return this.names.putMany(names, options);
  }

  getName(name: string, options?: GetNameOptions): Promise<string> {
    return this.names.get(name, options);
  }

  /** A name's kept versions, newest first. Errors: NameNotFound. */
  versions(name: string): Promise<NameVersion[]> {
    return this.names.versions(name);
  }

  /** Drops one kept version: the previous becomes latest; the last one drops the name. Errors: NameNotFound. */
  dropVersion(name: string, version: number): Promise<void> {
    return this.names.dropVersion(name, version);
  }

  async dropName(name: string): Promise<void> {
    await this.names.drop(name);
  }

  listNames(options?: { pattern?: string }): Promise<string[]> {
    return this.names.list(options);
  }

  // Streams

  /** typename: trellis::ByteStream, trellis::RecordBatchStream or trellis::DataframeStream. */
  async createStream(
    typename: string,
    options: { schema?: Uint8Array; params?: Record<string, unknown> } = {},
  ): Promise<{ id: string; typename: string }> {
    const { id } = await this.channel.request('createStream', {
      typename,
      schema: options.schema,
      params: options.params,
    });
    return { id, typename };
  }

  /** Errors: ObjectNotFound, StreamOpened (it has or had a writer). */
  async openWriter(id: string): Promise<StreamWriter> {
    const info = await this.channel.request('openWriter', { id: checkId(id) });
    return new StreamWriter(this.channel, this.blobs, id, info, (chunk) => this.encodeChunk(chunk));
  }

  /**
   * Errors: ObjectNotFound, StreamOpened (another reader has it). With `keep`, chunks stay
   * valid until this client closes instead of being freed as the reader moves on.
   */
  async openReader(id: string, options: { keep?: boolean } = {}): Promise<StreamReader> {
    const info = await this.channel.request('openReader', { id: checkId(id), cursor: true });
    return new StreamReader(
      this.channel,
      this.blobs,
      id,
      info,
      (chunk) => this.decodeChunk(chunk),
      options.keep ?? false,
    );
  }

  /** The raw client writes bytes only; the typed client puts other values. */
  protected encodeChunk(chunk: unknown): Promise<string> {
    return Promise.reject(
      new TrellisError('TypeMismatch', `this client writes only bytes to streams, got ${typeof chunk}`),
    );
  }

  /** The raw client yields blob chunks as Buffers and other chunks as handles. */
  protected decodeChunk(chunk: ObjectHandle): unknown {
    return chunk.typename === 'trellis::Blob' ? chunk.buffer : chunk;
  }

  // The daemon

  status(): Promise<DaemonStatus> {
    return this.channel.request('status', {});
  }

  /** True when the view is over trellis shared memory (sync). */
  isSharedMemory(view: ArrayBufferView | ArrayBufferLike): boolean {
    return this.channel.isSharedMemory(view);
  }

  /**
   * Lets the process exit while this client is idle, as net.Socket's unref does: the connection
   * keeps the process running only while a request is in flight. What the client holds stays
   * held until it closes or the process exits.
   */
  unref(): void {
    this.channel.unref();
  }

  async close(): Promise<void> {
    this.channel.close();
  }
}

function toList(idOrIds: string | string[]): string[] {
  return Array.isArray(idOrIds) ? idOrIds : [idOrIds];
}

function checkPath(path: unknown): string {
  if (typeof path !== 'string' || path.length === 0) {
    throw new TrellisError(
      'InvalidArgument',
      `expected a path (a directory, or a file ending in .tar), got ${JSON.stringify(path)}`,
    );
  }
  return path;
}

function checkRef(ref: unknown): string {
  if (typeof ref !== 'string' || ref.length === 0 || ref.length > 256) {
    throw new TrellisError('InvalidArgument', `expected an object id or a name, got ${JSON.stringify(ref)}`);
  }
  return ref;
}
