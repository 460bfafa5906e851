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
  memoryLimit: number;
  memoryReserved: number;
  segments: number;
  objects: number;
  clients: number;
  deferredFrees: number;
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

export interface CreateBlobRequest {
  size: number;
  /** Default trellis::Blob; a type stored as one blob (a ShareableList) names itself here. */
  typename?: string;
}
export type CreateBlobReply = BlobLocation;

export interface SealRequest {
  id: string;
}
export interface SealReply {
  id: string;
}

export interface AbortRequest {
  id: string;
}
export type AbortReply = Record<string, never>;

export interface GetBlobsRequest {
  ids: string[];
}
export interface GetBlobsReply {
  blobs: BlobLocation[];
}

export interface ReleaseRequest {
  ids: string[];
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
  limit?: number;
}
export interface ListObjectsReply {
  objects: ObjectSummary[];
}

export type StatusRequest = Record<string, never>;
export type StatusReply = DaemonStatus;

/** The table: kind -> [request, reply]. */
export interface Messages {
  register: [RegisterRequest, RegisterReply];
  attachFdChannel: [AttachFdChannelRequest, never];
  createBlob: [CreateBlobRequest, CreateBlobReply];
  seal: [SealRequest, SealReply];
  abort: [AbortRequest, AbortReply];
  getBlobs: [GetBlobsRequest, GetBlobsReply];
  release: [ReleaseRequest, ReleaseReply];
  delete: [DeleteRequest, DeleteReply];
  exists: [ExistsRequest, ExistsReply];
  listObjects: [ListObjectsRequest, ListObjectsReply];
  status: [StatusRequest, StatusReply];
}

export type Kind = keyof Messages;
export type RequestOf<K extends Kind> = Messages[K][0];
export type ReplyOf<K extends Kind> = Messages[K][1];

/** Kinds a registered client may send on its main socket. */
export type ClientKind = Exclude<Kind, 'register' | 'attachFdChannel'>;

export const KINDS: readonly Kind[] = [
  'register',
  'attachFdChannel',
  'createBlob',
  'seal',
  'abort',
  'getBlobs',
  'release',
  'delete',
  'exists',
  'listObjects',
  'status',
] satisfies Kind[];

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
