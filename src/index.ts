/** The public surface of trellis (see API.md). */
export { connect, connectRpc, TrellisClient } from './connect';
export type { RpcConnectOptions } from './client/rpc';
export type { RpcTlsOptions } from './protocol/rpc-tls';
export type { Client, DeleteOptions } from './client/client';
export type { Blob, BlobWriter } from './client/blobs';
export type { ObjectHandle } from './client/object-handle';
export type { MetadataSpec, CreateMetadataOptions } from './client/objects';
export type { ClusterInfo, PersistOptions } from './client/cluster';
export type { ArchiveProgress, ExportArchiveOptions, ImportArchiveOptions } from './client/archive/archive-client';
export {
  publishOptions,
  registerBuilder,
  registerResolver,
  type PutOptions,
  type Builder,
  type Resolver,
} from './types/registry';
export { startDaemon, type Daemon } from './daemon/server';
export type { DaemonOptions } from './daemon/options';
export { TrellisError, ERROR_CODES, isTrellisError, type ErrorCode } from './errors';
export type {
  DaemonStatus,
  InstanceSummary,
  LineageEntry,
  ObjectMeta,
  ObjectSummary,
  ParentRef,
} from './protocol/messages';
export { MAX_INLINE_BLOB_BYTES } from './protocol/messages';
export { defaultSocketPath } from './protocol/socket-path';
export { ShareableList, type ShareableItem, type ShareableListOptions } from './types/shareable-list';
