/**
 * The public surface of trellis (see API.md).
 *
 * What a client process does not use is not loaded with it: the daemon (pino, lmdb, the metadata
 * backends) loads at the first startDaemon call, archives (tar) at the first export or import,
 * the TCP/TLS channel at the first connectRpc, and apache-arrow at the first DataFrame. A fresh
 * worker that connects and gets pays for the modules on that path only.
 */
import './use-code-cache';
import type { Daemon } from './daemon/server';
import type { DaemonOptions } from './daemon/options';

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
export type { Daemon, DaemonOptions };
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

/** Runs a daemon in this process (tests, embedding); bin/trellisd runs the same. */
export function startDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy load needs require
  return (require('./daemon/server') as typeof import('./daemon/server')).startDaemon(options);
}
