/**
 * The raw client: blobs and object housekeeping over the daemon's socket. Typed put/get live in
 * connect.ts, on top of this; this file never imports from types/.
 */
import { TrellisError } from '../errors';
import type { DaemonStatus, ObjectSummary } from '../protocol/messages';
import { isObjectId } from '../protocol/ids';
import { defaultSocketPath } from '../protocol/socket-path';
import { BlobCache, type Blob, type BlobWriter } from './blobs';
import { IpcChannel } from './ipc';

export interface DeleteOptions {
  /** Also delete members nothing else uses (objects with members; blobs have none). */
  deep?: boolean;
  /** Delete even when a name or another object still refers to it. */
  force?: boolean;
}

export class Client {
  private readonly blobs: BlobCache;

  protected constructor(protected readonly channel: IpcChannel) {
    this.blobs = new BlobCache(channel);
  }

  static async open(socketPath = defaultSocketPath()): Promise<Client> {
    return new Client(await IpcChannel.open(socketPath));
  }

  get instanceId(): number {
    return this.channel.registration.instanceId;
  }

  get socketPath(): string {
    return this.channel.socketPath;
  }

  /** A writable blob of exactly `size` bytes; `typename` labels a type stored as one blob. */
  createBlob(size: number, options: { typename?: string } = {}): Promise<BlobWriter> {
    return this.blobs.create(size, options.typename);
  }

  /** Errors: ObjectNotFound, NotSealed, InvalidArgument. */
  async getBlob(id: string): Promise<Blob> {
    checkIds([id]);
    return (await this.blobs.get([id]))[0];
  }

  async getBlobs(ids: string[]): Promise<Blob[]> {
    checkIds(ids);
    return this.blobs.get(ids);
  }

  /** Drops this client's reference early; views already handed out must not be used after. */
  async release(idOrIds: string | string[]): Promise<void> {
    const ids = toList(idOrIds);
    checkIds(ids);
    this.blobs.forget(ids);
    await this.channel.request('release', { ids });
  }

  /** Errors: ObjectNotFound, NotSealed. Nothing is deleted unless every id can be. */
  async delete(idOrIds: string | string[], options: DeleteOptions = {}): Promise<void> {
    const ids = toList(idOrIds);
    checkIds(ids);
    await this.channel.request('delete', { ids, deep: options.deep ?? true, force: options.force ?? false });
    this.blobs.forget(ids);
  }

  async exists(id: string): Promise<boolean> {
    checkIds([id]);
    return (await this.channel.request('exists', { id })).exists;
  }

  async listObjects(options: { pattern?: string; limit?: number } = {}): Promise<ObjectSummary[]> {
    return (await this.channel.request('listObjects', options)).objects;
  }

  status(): Promise<DaemonStatus> {
    return this.channel.request('status', {});
  }

  /** True when the view is over trellis shared memory (sync). */
  isSharedMemory(view: ArrayBufferView | ArrayBufferLike): boolean {
    return this.channel.mappings.isSharedMemory(view);
  }

  async close(): Promise<void> {
    this.channel.close();
  }
}

function toList(idOrIds: string | string[]): string[] {
  return Array.isArray(idOrIds) ? idOrIds : [idOrIds];
}

function checkIds(ids: unknown[]): void {
  for (const id of ids) {
    if (!isObjectId(id)) {
      throw new TrellisError('InvalidArgument', `${JSON.stringify(id)} is not an object id (expected o followed by 16 hex digits)`);
    }
  }
}
