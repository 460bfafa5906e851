/** What export and import need from the client: a narrow seam, so archive/ sees no more. */
import type { ClientKind, ReplyOf, RequestOf } from '../../protocol/messages';
import type { BlobWriter } from '../blobs';
import type { ObjectHandle } from '../object-handle';

export interface ArchiveClient {
  readonly instanceId: number;
  request<K extends ClientKind>(kind: K, body: RequestOf<K>): Promise<ReplyOf<K>>;
  getObject(id: string): Promise<ObjectHandle>;
  release(id: string): Promise<void>;
  createBlobs(sizes: number[], options: { typename?: string }): Promise<BlobWriter[]>;
  putName(id: string, name: string, options: { override?: boolean }): Promise<void>;
}

export interface ArchiveProgress {
  bytesDone: number;
  bytesTotal: number;
}

export interface ExportArchiveOptions {
  /** Called as blob bytes are written: bytesTotal is the size of the distinct blobs. */
  onProgress?: (progress: ArchiveProgress) => void;
}

export interface ImportArchiveOptions {
  /** Publish the imported (or already present) object under this name. */
  name?: string;
  override?: boolean;
  /** Called as blob bytes are read and checked. */
  onProgress?: (progress: ArchiveProgress) => void;
}
