/**
 * Every message of the client <-> daemon protocol, once. The client and the daemon both import
 * this table; neither declares message shapes of its own. A kind is named for the client method
 * that sends it (`createBlob` sends CreateBlobRequest and gets CreateBlobReply).
 */
import type { WireError } from '../errors';

export const PROTOCOL_VERSION = 1;

/** Where a blob's bytes are: only ever in replies, never in IDs or metadata. */
export interface BlobLocation {
  id: string;
  size: number;
  segment: number;
  offset: number;
}

/** A segment this client has not seen yet; its fd arrives on the fd channel before the reply. */
export interface SegmentGrant {
  segment: number;
  size: number;
}

export interface ObjectSummary {
  id: string;
  typename: string;
  nbytes: number;
  sealed: boolean;
  createdAt: number;
}

export interface DaemonStatus {
  instanceId: number;
  pid: number;
  socket: string;
  version: string;
  memoryUsage: number;
  /** `--size`, as given: the ceiling on memoryReserved. */
  memoryLimit: number;
  /**
   * What memoryReserved can grow to now: memoryLimit, or less when the machine holds less (RAM
   * left less a safety margin, the shm dir's free space, a memory cgroup's room), read live.
   */
  memoryCapacity: number;
  memoryReserved: number;
  /**
   * Bytes of the spare segment (--spare-segment) reserved and ready for the next blob that needs a
   * new segment: included in memoryReserved, not in segments; 0 without one or while it is reserved.
   */
  memorySpare: number;
  segments: number;
  objects: number;
  names: number;
  clients: number;
  deferredFrees: number;
  streams: number;
  /** Requests answered since start (lets tests count round trips). */
  requests: number;
  /** Sealed blobs whose bytes are on disk, not in memory (spilled, or persisted and not loaded yet). */
  spilled: { objects: number; bytes: number };
  /** This daemon's persisted objects (durable ones with --data-dir). */
  persisted: number;
  /**
   * Other instances' object records this daemon holds in memory: in a cluster, a bounded cache
   * of those it was asked about (never all of the cluster's); 0 alone.
   */
  remoteRecords: number;
}

// Requests and replies, grouped by the kind that carries them.

export interface RegisterRequest {
  protocolVersion: number;
  pid: number;
}
export interface RegisterReply {
  clientId: number;
  instanceId: number;
  fdChannelToken: string;
  maxFrameBytes: number;
}

/** The first and only frame on a client's fd channel; it has no reply. */
export interface AttachFdChannelRequest {
  clientId: number;
  fdChannelToken: string;
}

export interface CreateBlobsRequest {
  sizes: number[];
  /** Default trellis::Blob; a type stored as one blob (a ShareableList) names itself here. */
  typename?: string;
}
export interface CreateBlobsReply {
  blobs: BlobLocation[];
}

/**
 * Bytes up to this size may travel inside a request (putBlobs, createMetadata's inlineMembers):
 * the daemon copies them into shared memory, so a small put is one request and needs no mapping
 * on the client. Larger blobs are written by the client into shared memory (createBlobs).
 */
export const MAX_INLINE_BLOB_BYTES = 64 * 1024;

/** A small blob whose bytes ride in the request; what a seal can say, it says too. */
export interface InlineBlob {
  data: Uint8Array;
  name?: string;
  override?: boolean;
  persist?: boolean;
  labels?: Record<string, string>;
  parents?: string[];
}
/**
 * Small blobs in one round trip, all or none: the daemon copies each `data` into a new blob in
 * shared memory and seals it, keeping no reference for this client (as sealBlob).
 */
export interface PutBlobsRequest {
  blobs?: InlineBlob[];
  /**
   * The compact form, for blobs that carry nothing but bytes (no name, labels, parents or
   * persist): their sizes, and all their bytes one after another in `data`. One bin and one
   * list of numbers cost far less to encode and decode than a map per blob. Either `blobs` or
   * `sizes` and `data`.
   */
  sizes?: number[];
  data?: Uint8Array;
  /**
   * With `sizes`: each blob is a put of its own rather than all or none (a client's puts in
   * flight, coalesced): one that does not fit is in the reply's `errors`, the others are stored.
   */
  each?: boolean;
}
export interface PutBlobsReply {
  /** In order; with `each`, those of the blobs not in `errors`. */
  ids: string[];
  errors?: { at: number[]; errors: WireError[] };
}

export interface SealRequest {
  id: string;
  /** Keep a reference for the sealing client (default true). */
  hold?: boolean;
  /** Publish the blob under this name, in the same step. */
  name?: string;
  override?: boolean;
  /** In a cluster: make it visible cluster-wide, in the same step (a name implies it). */
  persist?: boolean;
  labels?: Record<string, string>;
  /** Lineage: the objects (ids or names) this one was made from. */
  parents?: string[];
}
export interface SealReply {
  id: string;
}

export interface AbortRequest {
  id: string;
}
export type AbortReply = Record<string, never>;

/**
 * Many aborts in one request (a finishing stream writer gives back its unused blobs): every id
 * must be an unsealed blob of this client; all or none. An older daemon answers ProtocolError
 * (unknown request kind), and the client sends one `abort` each instead.
 */
export interface AbortBlobsRequest {
  ids: string[];
}
export type AbortBlobsReply = Record<string, never>;

export interface GetBlobsRequest {
  ids: string[];
}
export interface GetBlobsReply {
  blobs: BlobLocation[];
}

export interface ReleaseRequest {
  ids: string[];
  /**
   * Read-index slots whose hold this client dropped and found waiting (SLOT_WAITING): the daemon
   * frees what waited on them once no client holds them (docs/read-index.md).
   */
  indexSlots?: number[];
}
export type ReleaseReply = Record<string, never>;

export interface DeleteRequest {
  ids: string[];
  deep: boolean;
  force: boolean;
}
export interface DeleteReply {
  deleted: string[];
}

export interface ExistsRequest {
  id: string;
}
export interface ExistsReply {
  exists: boolean;
}

export interface ListObjectsRequest {
  pattern?: string;
  /** Only objects carrying every one of these labels. */
  labels?: Record<string, string>;
  limit?: number;
}
export interface ListObjectsReply {
  objects: ObjectSummary[];
}

/**
 * A parent in an object's lineage: recorded by id when the object was made, with the name (and
 * the name's version, once names have versions) when the parent was given by name. A parent
 * is recorded, not pinned: it may be deleted since.
 */
export interface ParentRef {
  id: string;
  name?: string;
  version?: number;
}

/** An object's metadata tree as clients see it; members are expanded recursively. */
export interface ObjectMeta {
  id: string;
  typename: string;
  nbytes: number;
  instanceId: number;
  createdAt: number;
  labels: Record<string, string>;
  fields: Record<string, unknown>;
  members: Record<string, ObjectMeta>;
  /** Lineage: what the object was made from (getMeta's root always has it; members when set). */
  parents?: ParentRef[];
  /** getMeta's root only: whether it is persisted (durable with --data-dir). */
  persisted?: boolean;
  /** getMeta's root only: when its ttl runs out (ms since the epoch), or null. */
  expiresAt?: number | null;
  /** getMeta's root only: false while any of its blobs is on disk rather than in memory. */
  resident?: boolean;
}

export interface CreateMetadataRequest {
  typename: string;
  members?: Record<string, string>;
  fields?: Record<string, unknown>;
  labels?: Record<string, string>;
  /** This client's unsealed blobs to seal first, in the same step (a put in one round trip). */
  seal?: string[];
  /**
   * Members whose bytes ride in the request (each at most MAX_INLINE_BLOB_BYTES): the daemon
   * copies each into a new sealed blob and makes it the member under that key.
   */
  inlineMembers?: Record<string, Uint8Array>;
  /** Publish the new object under this name, in the same step. */
  name?: string;
  override?: boolean;
  /** In a cluster: make it visible cluster-wide, in the same step (a name implies it). */
  persist?: boolean;
  /** Lineage: the objects (ids or names) this one was made from. */
  parents?: string[];
}
export interface CreateMetadataReply {
  id: string;
}

/** Many createMetadata requests in one round trip; all or none. */
export interface CreateMetadataManyRequest {
  objects: CreateMetadataRequest[];
}
export interface CreateMetadataManyReply {
  ids: string[];
}

/** `ref` is an object id or a name. */
export interface GetObjectRequest {
  ref: string;
  /** In a cluster: copy the bytes of another instance's object here (else RemoteObject). */
  fetch?: boolean;
  /** `ref` is a name: get this kept version of it. */
  version?: number;
}
export interface GetObjectReply {
  meta: ObjectMeta;
  /** Every blob in the tree, now referenced by this client. */
  blobs: BlobLocation[];
}

/** Many getObject requests in one round trip (ids or names); all or none. */
export interface GetObjectsRequest {
  refs: string[];
  /** Answer the plain blobs among them in columns (`plain`) rather than one reply each. */
  columns?: boolean;
  /**
   * Each ref on its own, as getObject would answer it, rather than all or none: a ref that fails
   * is in `errors` and the others are answered (a client's coalesced gets). Implies `columns`.
   */
  each?: boolean;
}
export interface GetObjectsReply {
  /** In the order of `refs`: all of them, or (with `columns`) those in neither `plain` nor `errors`. */
  objects: GetObjectReply[];
  plain?: PlainBlobColumns;
  /** With `each`: the refs that failed, by position, and why. */
  errors?: { at: number[]; errors: WireError[] };
}

/**
 * Objects that are a single blob of this daemon with no labels, fields, members or parents (what
 * a put of a Buffer makes), one column per property: `at[i]` is its position among the refs.
 * Their meta and location follow from these, so a getMany of small Buffers encodes a few lists
 * of numbers and strings instead of a map tree per object.
 */
export interface PlainBlobColumns {
  at: number[];
  ids: string[];
  typenames: string[];
  sizes: number[];
  createdAt: number[];
  segments: number[];
  offsets: number[];
  instanceId: number;
}

export interface GetMetaRequest {
  ref: string;
}
export interface GetMetaReply {
  meta: ObjectMeta;
}

export interface PutNameRequest {
  id: string;
  name: string;
  override?: boolean;
  /** Refuse (Conflict) unless the name is at this version; 0: unless it does not exist. */
  expectVersion?: number;
}
export interface PutNameReply {
  /** The name's version after the write (unchanged when it already pointed to the object). */
  version: number;
}

export interface PutNamesRequest {
  names: Record<string, string>;
  override?: boolean;
}
export interface PutNamesReply {
  /** name -> its version after the write. */
  versions: Record<string, number>;
}

/** One version of a name: what it pointed to from `createdAt` (ms since the epoch). */
export interface NameVersion {
  version: number;
  id: string;
  createdAt: number;
}

export interface VersionsRequest {
  name: string;
}
export interface VersionsReply {
  /** Newest first. */
  versions: NameVersion[];
}

export interface DropVersionRequest {
  name: string;
  version: number;
}
export type DropVersionReply = Record<string, never>;

export interface GetNameRequest {
  name: string;
  /** A kept version instead of the latest (no waiting then). */
  version?: number;
  wait?: boolean;
  timeoutMs?: number;
}
export interface GetNameReply {
  id: string;
}

export interface DropNameRequest {
  name: string;
}
export interface DropNameReply {
  dropped: boolean;
}

export interface ListNamesRequest {
  pattern?: string;
}
export interface ListNamesReply {
  names: string[];
}

/** Merges labels into a sealed object (`ref`: an id or a name); a null value removes that label. */
export interface LabelRequest {
  ref: string;
  labels: Record<string, string | null>;
}
/** The object's labels after the change. */
export interface LabelReply {
  labels: Record<string, string>;
}

/** One object of a lineage: `typename` is null when the object is missing (deleted since). */
export interface LineageEntry {
  depth: number;
  id: string;
  typename: string | null;
  name?: string;
  version?: number;
  missing: boolean;
}

/** An object (`ref`: an id or a name) and its parents, breadth first, up to `maxDepth` generations. */
export interface LineageRequest {
  ref: string;
  maxDepth?: number;
}
export interface LineageReply {
  entries: LineageEntry[];
}

export interface CreateStreamRequest {
  typename: string;
  /** Arrow IPC schema bytes for record-batch streams. */
  schema?: Uint8Array;
  params?: Record<string, unknown>;
}
export interface CreateStreamReply {
  id: string;
}

export interface OpenStreamRequest {
  id: string;
  /** openReader only: ask for a cursor (see OpenStreamReply), to read several chunks at a time. */
  cursor?: boolean;
}
export interface OpenStreamReply {
  typename: string;
  schema?: Uint8Array;
  params: Record<string, unknown>;
  /**
   * openReader with `cursor`: a blob of 8 bytes the reader keeps up to date, two little-endian
   * int32: the `read` of the last answer it took and how many of that answer's chunks its caller
   * got. A reader that goes away thus leaves exactly the chunks its caller never saw.
   */
  cursor?: BlobLocation;
  /**
   * openReader with `cursor`: this daemon takes `prefetch` reads (see ReadChunkRequest). An older
   * daemon does not say so, and the reader then asks again only after its last chunk.
   */
  prefetch?: boolean;
}

/** Appends a sealed object as the next chunk; `seal` seals the writer's blobs first. */
export interface WriteChunkRequest {
  id: string;
  chunk: string;
  seal?: string[];
  /**
   * Further chunks appended after `chunk`, in order, in the same request: a writer that gets
   * ahead of the round trip sends the chunks it wrote meanwhile together, one answer for all.
   */
  more?: ChunkAppend[];
}
export interface ChunkAppend {
  chunk: string;
  seal?: string[];
}
export interface WriteChunkReply {
  /**
   * Chunks the reader has moved past, recycled into unsealed blobs of this writer (same sizes,
   * memory it has touched before): fill one instead of creating a blob, or abort it.
   */
  recycled?: BlobLocation[];
}

export interface ReadChunkRequest {
  id: string;
  /**
   * Keep this chunk's bytes after moving on: it still leaves the store, but its memory is freed
   * only when this client releases it or disconnects (for gathering a whole table zero-copy).
   */
  keep?: boolean;
  /**
   * Sent while the caller still uses the chunk this reader got last: free only the ones before
   * it. Until the next read that chunk counts as not yet read, so a reader that closes or goes
   * away before then leaves it for the next reader.
   */
  ahead?: boolean;
  /**
   * Chunks this reply may carry, at most (default 1): the ones after the first go in `more`, if
   * they were written already. A reader far behind its writer then pays one round trip for
   * several chunks. The reader's next read (or close) counts them all as handed on.
   */
  max?: number;
  /**
   * With `ahead`, for a reader with a cursor: sent as the caller gets the first chunk of the last
   * answer, not its last, so the next chunks travel while the caller works through this answer.
   * Only the chunks of answers before the last one are freed; the daemon learns from the cursor
   * which chunks of the last two answers the caller got, should the reader close or go away.
   */
  prefetch?: boolean;
}
/** The next chunk (this client now holds its blobs), or `end` once the writer finished. */
export interface ReadChunkReply {
  end: boolean;
  meta?: ObjectMeta;
  blobs?: BlobLocation[];
  /** The chunks after this one, in order, when the read asked for several (`max`). */
  more?: ChunkRead[];
  /** This answer's number in the stream (see OpenStreamReply's cursor). */
  read?: number;
}
export interface ChunkRead {
  meta: ObjectMeta;
  blobs: BlobLocation[];
}

export interface FinishStreamRequest {
  id: string;
}
export type FinishStreamReply = Record<string, never>;

export interface FailStreamRequest {
  id: string;
  reason: string;
}
export type FailStreamReply = Record<string, never>;

export interface CloseStreamRequest {
  id: string;
  /**
   * closeReader only: how many chunks of the last answered read never reached the reader's
   * caller; they go back to the queue for the next reader. Unset: every chunk of that read goes
   * back when it was a read ahead no later read followed.
   */
  unseen?: number;
}
export type CloseStreamReply = Record<string, never>;

export type StatusRequest = Record<string, never>;
export type StatusReply = DaemonStatus;

/**
 * Copies a remote object into this daemon (`ref`: an id or a name) and answers with the local
 * copy's id; an object already here answers with itself. A second migrate of the same object
 * copies nothing: the daemon remembers the copy while it lives.
 */
export interface MigrateRequest {
  ref: string;
}
export interface MigrateReply {
  id: string;
  /** Bytes copied by this call: 0 when the object was local or copied before. */
  copiedBytes: number;
}

/** A metadata object whose members may live on other instances (partitions). */
export interface PutGlobalRequest {
  typename: string;
  /** member key -> object id, local or remote */
  members: Record<string, string>;
  fields?: Record<string, unknown>;
  labels?: Record<string, string>;
  name?: string;
  override?: boolean;
  /** In a cluster: visible cluster-wide (a name implies it). */
  persist?: boolean;
  /** Lineage: ids or names of what it was made from. */
  parents?: string[];
}
export interface PutGlobalReply {
  id: string;
}

// The RPC (TCP) port speaks the same frames and kinds, plus the three below. A remote session
// cannot receive fds, so blob bytes travel inside its frames instead, copied.

/** The first frame on the RPC port. */
export interface RegisterRpcRequest {
  protocolVersion: number;
  /** The daemon's --rpc-token, when it requires one. */
  token?: string;
}
export interface RegisterRpcReply {
  clientId: number;
  instanceId: number;
  /** The largest request frame the daemon accepts; writeBlob chunks stay under it. */
  maxFrameBytes: number;
}

export interface ByteRange {
  id: string;
  offset: number;
  length: number;
}

/** Bytes of blobs this session holds (taken with getBlobs or getObject first). */
export interface ReadBlobsRequest {
  ranges: ByteRange[];
}
/** The ranges' bytes back to back, in request order. */
export interface ReadBlobsReply {
  data: Uint8Array;
}

/** Writes bytes into one of this session's unsealed blobs. */
export interface WriteBlobRequest {
  id: string;
  offset: number;
  data: Uint8Array;
}
export type WriteBlobReply = Record<string, never>;

/** An instance as the cluster view shows it (clusterInfo). */
export interface InstanceSummary {
  instanceId: number;
  hostname: string;
  /** Its UNIX socket, on its host. */
  socket: string;
  /** host:port of its RPC port, or null when it serves none. */
  rpcEndpoint: string | null;
  /** False once its lease is gone: it stopped, died, or lost etcd for longer than its TTL. */
  alive: boolean;
}

export type ClusterInfoRequest = Record<string, never>;
/** Answered from the daemon's cached view of etcd: it never waits for etcd. */
export interface ClusterInfoReply {
  /** The instance that answered. */
  instanceId: number;
  /** False without --etcd: the list is just this instance. */
  clustered: boolean;
  /** Whether this instance is registered in etcd right now (false while etcd is unreachable). */
  registered: boolean;
  instances: InstanceSummary[];
}

/** Makes an object (and its members) visible cluster-wide; `ttl` in seconds makes it expire. */
export interface PersistRequest {
  id: string;
  ttl?: number;
}
export type PersistReply = Record<string, never>;

// Archives (client/archive/): the daemon keeps an index topHash -> object, so that importing
// content it already has stores nothing twice, and creates an imported tree in one step.

/** Checks that `ref` (an id or a name) can be exported: a stream cannot. */
export interface ExportArchiveRequest {
  ref: string;
}
export interface ExportArchiveReply {
  id: string;
}

/** Remembers that object `id` has this topHash (an export computed it). */
export interface RecordArchiveRequest {
  topHash: string;
  id: string;
}
export type RecordArchiveReply = Record<string, never>;

/** The live object with this topHash, if the daemon knows one. */
export interface FindArchiveRequest {
  topHash: string;
}
export interface FindArchiveReply {
  id: string | null;
}

/** A member of an imported tree: one of the request's blobs, or an earlier node by index. */
export type ArchiveRef = { blob: string } | { node: number };

/** A metadata object of an imported tree; members refer to blobs or to earlier nodes. */
export interface ArchiveNode {
  typename: string;
  fields: Record<string, unknown>;
  labels: Record<string, string>;
  members: Record<string, ArchiveRef>;
}

/**
 * Creates a verified archive's tree at once: seals `seal` (this client's unsealed blobs, already
 * written and checked), creates `nodes` in order, names the root. When the daemon already has
 * an object with this topHash, it aborts `seal` instead and answers with that object.
 */
export interface ImportArchiveRequest {
  topHash: string;
  root: ArchiveRef;
  nodes: ArchiveNode[];
  seal: string[];
  name?: string;
  override?: boolean;
  /** The manifest's parents (ids): recorded on a new root for those that exist here. */
  parents?: string[];
  /** A root blob's labels (a metadata root's are in its node). */
  rootLabels?: Record<string, string>;
}
export interface ImportArchiveReply {
  id: string;
  existed: boolean;
}

/** Maps the daemon's read index (protocol/read-index-layout.ts): its fd is granted as segment 0. */
export interface OpenReadIndexRequest {
  /** Also grant this client's hold counters (pinned views of indexed blobs; docs/read-index.md). */
  holds?: boolean;
  /**
   * Also grant the fds of the pool's segments now (at most READ_INDEX_CONNECT_SEGMENTS), so that
   * this client's first get of an indexed blob needs no request. A daemon that does not know the
   * field ignores it (and grants them with the gets, as before).
   */
  segments?: boolean;
}
export interface OpenReadIndexReply {
  /** Bytes of the index segment; 0 when the daemon keeps no index (nothing was granted). */
  size: number;
  /**
   * Bytes of this client's hold counters, granted as READ_INDEX_HOLDS_SEGMENT; absent when not. A
   * daemon that reads use counts makes it two words per slot (counters, then use counts); one that
   * does not, one word per slot.
   */
  holds?: number;
  /** How many pool segments were granted with the index (asked with `segments`); absent when not asked. */
  segments?: number;
}

/**
 * Grants a local client its put ring (protocol/put-ring-layout.ts) on the first call, and on every
 * call a new arena with the block of ids its objects take. Errors: OutOfMemory (nothing granted).
 */
export type GrantPutArenaRequest = Record<string, never>;
export interface PutArena {
  /** The arena block: objects are written from `offset`, one after the other. */
  segment: number;
  offset: number;
  size: number;
  /** The ids' 48-bit sequence numbers: `firstSequence` .. `firstSequence + ids - 1`, in order. */
  firstSequence: number;
  ids: number;
}
export interface GrantPutArenaReply {
  /** The ring, on the call that made it; the ring's block is in a segment granted with this reply. */
  ring?: BlobLocation;
  /** Undefined when this daemon gives this session no ring (RPC, not x86-64, --put-ring-bytes 0). */
  arena?: PutArena;
  /**
   * With the ring: the highest record kind this daemon takes (put-ring-layout.ts). A daemon that
   * leaves it out takes kinds 1-4 only, so the client puts TypedArrays through the socket there.
   */
  maxRecordKind?: number;
}

/** Makes the daemon drain the client's put ring: a doorbell (answer not awaited) or a wait for room. */
export type DrainPutRingRequest = Record<string, never>;
export type DrainPutRingReply = Record<string, never>;

/** The table: kind -> [request, reply]. */
export interface Messages {
  register: [RegisterRequest, RegisterReply];
  attachFdChannel: [AttachFdChannelRequest, never];
  createBlobs: [CreateBlobsRequest, CreateBlobsReply];
  putBlobs: [PutBlobsRequest, PutBlobsReply];
  seal: [SealRequest, SealReply];
  abort: [AbortRequest, AbortReply];
  abortBlobs: [AbortBlobsRequest, AbortBlobsReply];
  getBlobs: [GetBlobsRequest, GetBlobsReply];
  release: [ReleaseRequest, ReleaseReply];
  delete: [DeleteRequest, DeleteReply];
  exists: [ExistsRequest, ExistsReply];
  listObjects: [ListObjectsRequest, ListObjectsReply];
  createMetadata: [CreateMetadataRequest, CreateMetadataReply];
  createMetadataMany: [CreateMetadataManyRequest, CreateMetadataManyReply];
  getObject: [GetObjectRequest, GetObjectReply];
  getObjects: [GetObjectsRequest, GetObjectsReply];
  openReadIndex: [OpenReadIndexRequest, OpenReadIndexReply];
  grantPutArena: [GrantPutArenaRequest, GrantPutArenaReply];
  drainPutRing: [DrainPutRingRequest, DrainPutRingReply];
  getMeta: [GetMetaRequest, GetMetaReply];
  putName: [PutNameRequest, PutNameReply];
  putNames: [PutNamesRequest, PutNamesReply];
  getName: [GetNameRequest, GetNameReply];
  dropName: [DropNameRequest, DropNameReply];
  listNames: [ListNamesRequest, ListNamesReply];
  versions: [VersionsRequest, VersionsReply];
  dropVersion: [DropVersionRequest, DropVersionReply];
  label: [LabelRequest, LabelReply];
  lineage: [LineageRequest, LineageReply];
  createStream: [CreateStreamRequest, CreateStreamReply];
  openWriter: [OpenStreamRequest, OpenStreamReply];
  openReader: [OpenStreamRequest, OpenStreamReply];
  writeChunk: [WriteChunkRequest, WriteChunkReply];
  readChunk: [ReadChunkRequest, ReadChunkReply];
  finishStream: [FinishStreamRequest, FinishStreamReply];
  failStream: [FailStreamRequest, FailStreamReply];
  /** A reader that stops early lets go of the stream (another reader may open it). */
  closeReader: [CloseStreamRequest, CloseStreamReply];
  status: [StatusRequest, StatusReply];
  clusterInfo: [ClusterInfoRequest, ClusterInfoReply];
  persist: [PersistRequest, PersistReply];
  migrate: [MigrateRequest, MigrateReply];
  putGlobal: [PutGlobalRequest, PutGlobalReply];
  exportArchive: [ExportArchiveRequest, ExportArchiveReply];
  recordArchive: [RecordArchiveRequest, RecordArchiveReply];
  findArchive: [FindArchiveRequest, FindArchiveReply];
  importArchive: [ImportArchiveRequest, ImportArchiveReply];
  registerRpc: [RegisterRpcRequest, RegisterRpcReply];
  readBlobs: [ReadBlobsRequest, ReadBlobsReply];
  writeBlob: [WriteBlobRequest, WriteBlobReply];
}

export type Kind = keyof Messages;
export type RequestOf<K extends Kind> = Messages[K][0];
export type ReplyOf<K extends Kind> = Messages[K][1];

/** Kinds only the RPC port serves: bytes travel in frames there, never on the UNIX socket. */
export type RpcOnlyKind = 'registerRpc' | 'readBlobs' | 'writeBlob';

/** Kinds a registered client may send on its main socket. */
export type ClientKind = Exclude<Kind, 'register' | 'attachFdChannel' | RpcOnlyKind>;

/** Kinds a registered RPC session may send: every client kind, plus reading and writing bytes. */
export type RpcKind = ClientKind | Exclude<RpcOnlyKind, 'registerRpc'>;

/** A request frame's body. */
export interface RequestEnvelope<K extends Kind = Kind> {
  kind: K;
  seq: number;
  body: RequestOf<K>;
}

/** A reply frame's body: the reply or an error, plus segment bookkeeping for this client. */
export interface ReplyEnvelope<K extends Kind = Kind> {
  seq: number;
  reply?: ReplyOf<K>;
  error?: WireError;
  /** Segments whose fds were just sent on the fd channel, in order. */
  grants?: SegmentGrant[];
  /** Segments the daemon released: the client drops its fd and mapping. */
  drops?: number[];
}
