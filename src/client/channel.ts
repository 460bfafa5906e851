/**
 * What the client needs from its connection to a daemon, whichever kind it is:
 *
 * - IpcChannel (ipc.ts), the UNIX socket: fds are passed, blobs are mapped, no byte is copied.
 * - RpcChannel (rpc.ts), the daemon's TCP port: blob bytes are copied through the connection,
 *   writers fill local buffers that go up when sealed, and views are local copies.
 *
 * Client, blobs, objects, names and streams are written against this interface only, so the
 * typed API works the same over both.
 */
import type { BlobLocation, ClientKind, ReplyOf, RequestOf } from '../protocol/messages';

export interface Channel {
  /** Where the daemon is: its socket path, or host:port for RPC. */
  readonly endpoint: string;
  /** The daemon's instance id. */
  readonly instanceId: number;
  readonly closed: boolean;
  request<K extends ClientKind>(kind: K, body: RequestOf<K>): Promise<ReplyOf<K>>;
  /** The bytes a writer fills for a new blob, until it is sealed or aborted. */
  writable(blob: BlobLocation): ArrayBuffer;
  /**
   * Copies `bytes` into the start of a new blob's bytes, as a write through writable() would, for
   * a writer that never hands the blob's buffer out (a stream's chunk).
   */
  fill(blob: BlobLocation, bytes: Uint8Array): void;
  /** A sealed blob's bytes, for a blob this client holds (from a reply to one of its requests). */
  view(blob: BlobLocation): Buffer;
  /** The client let go of these blobs: their views are no longer needed. */
  forget(ids: string[]): void;
  /** True when the view is over trellis shared memory (sync). */
  isSharedMemory(view: ArrayBufferView | ArrayBufferLike): boolean;
  /** From now on the connection keeps the process running only while a request is in flight. */
  unref(): void;
  close(): void;
}
