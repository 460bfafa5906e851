/**
 * The client end of the UNIX socket: frames requests, matches replies by seq, and receives
 * segment fds on the fd channel (a second socket the addon owns, since Node's net module drops
 * SCM_RIGHTS data). The daemon sends fds before the reply that mentions them, so by the time
 * a reply arrives its fds are already waiting and recvFd does not block.
 */
import * as net from 'node:net';
import { fromWireError, TrellisError } from '../errors';
import { encodeFrame, FrameDecoder } from '../protocol/framing';
import {
  PROTOCOL_VERSION,
  type BlobLocation,
  type Kind,
  type RegisterReply,
  type ReplyEnvelope,
  type ReplyOf,
  type RequestOf,
} from '../protocol/messages';
import { native } from '../native';
import type { Channel } from './channel';
import { SegmentMappings } from './mappings';
import { PendingReplies } from '../protocol/pending-replies';
import { replyNotWaiting } from '../protocol/reply-not-waiting';

/** How long to wait for an fd the daemon has already sent; only a broken daemon takes this long. */
const FD_RECEIVE_TIMEOUT_MS = 5000;

interface Pending {
  resolve(reply: unknown): void;
  reject(error: Error): void;
}

/** The writable buffers' list is first swept at this length (see IpcChannel.writables). */
const WRITABLES_SWEEP_MIN = 64;

export class IpcChannel implements Channel {
  readonly mappings = new SegmentMappings();
  registration!: RegisterReply;
  private readonly decoder = new FrameDecoder(Number.MAX_SAFE_INTEGER);
  private readonly pending = new PendingReplies<Pending>();
  private nextSeq = 1;
  private fdSocket = -1;
  private closedError?: TrellisError;
  /** False after unref(): the socket is then ref'd only while requests are pending. */
  private keepsProcessAlive = true;
  /**
   * The writable buffers handed out (unsealed blobs, stream cursors, the put ring and its arenas),
   * detached at shutdown: the daemon frees a client's unsealed blobs and arenas when it goes, and
   * a write through one still open then changed whatever object took the block next. Swept of
   * collected and detached (sealed, aborted) ones as it grows.
   */
  private writables: Array<WeakRef<ArrayBuffer>> = [];
  private sweepWritablesAt = WRITABLES_SWEEP_MIN;

  private constructor(
    private readonly socket: net.Socket,
    readonly socketPath: string,
  ) {
    socket.on('data', (chunk) => this.receive(chunk));
    socket.on('error', (error) =>
      this.shutdown(
        new TrellisError('ConnectionClosed', `connection to trellisd at ${socketPath} failed: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    socket.on('close', () =>
      this.shutdown(new TrellisError('ConnectionClosed', `trellisd at ${socketPath} closed the connection`)),
    );
  }

  /** Connects, registers and attaches the fd channel. Errors: ConnectionClosed, ProtocolError. */
  static async open(socketPath: string): Promise<IpcChannel> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new TrellisError(
            'ConnectionClosed',
            `cannot connect to trellisd at ${socketPath}: ${error.code ?? error.message} (is the daemon running? start it with npx trellisd)`,
            { cause: error },
          ),
        ),
      );
    });
    socket.setNoDelay?.(true);
    const channel = new IpcChannel(socket, socketPath);
    try {
      const registering = channel.request('register', { protocolVersion: PROTOCOL_VERSION, pid: process.pid });
      // Connected while the daemon registers (off the round trip); register's error, if any, still wins.
      let fdChannelError: unknown;
      try {
        channel.fdSocket = native.connectUnix(socketPath);
      } catch (error) {
        fdChannelError = error;
      }
      channel.registration = await registering;
      if (fdChannelError !== undefined) throw fdChannelError;
      native.sendBytes(
        channel.fdSocket,
        encodeFrame({
          kind: 'attachFdChannel',
          seq: 0,
          body: { clientId: channel.registration.clientId, fdChannelToken: channel.registration.fdChannelToken },
        }),
      );
    } catch (error) {
      channel.close();
      throw error;
    }
    return channel;
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  get endpoint(): string {
    return this.socketPath;
  }

  get instanceId(): number {
    return this.registration.instanceId;
  }

  writable(blob: BlobLocation): ArrayBuffer {
    const buffer = this.mappings.writable(blob);
    this.writables.push(new WeakRef(buffer));
    if (this.writables.length >= this.sweepWritablesAt) {
      this.writables = this.writables.filter((ref) => (ref.deref()?.byteLength ?? 0) > 0);
      this.sweepWritablesAt = Math.max(WRITABLES_SWEEP_MIN, this.writables.length * 2);
    }
    return buffer;
  }

  fill(blob: BlobLocation, bytes: Uint8Array): void {
    // As through a detached writable: nothing written after the close reaches the daemon's pool.
    if (this.closedError) throw this.closedError;
    this.mappings.fill(blob, bytes);
  }

  view(blob: BlobLocation): Buffer {
    return this.mappings.view(blob);
  }

  /** Nothing to do: views are of shared memory, which the daemon frees once released. */
  forget(): void {}

  isSharedMemory(view: ArrayBufferView | ArrayBufferLike): boolean {
    return this.mappings.isSharedMemory(view);
  }

  request<K extends Kind>(kind: K, body: RequestOf<K>): Promise<ReplyOf<K>> {
    if (this.closedError) return Promise.reject(this.closedError);
    // Encoded before it waits: a body msgpack refuses (a bigint past 64 bits) must not leave a
    // waiter for a reply that never comes (it would keep an unref'd process running).
    let frame: Buffer;
    try {
      frame = encodeFrame({ kind, seq: this.nextSeq, body });
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (!this.keepsProcessAlive && this.pending.size === 0) this.socket.ref();
    const seq = this.nextSeq++;
    return new Promise<ReplyOf<K>>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (reply: unknown) => void, reject });
      this.socket.write(frame);
    });
  }

  unref(): void {
    this.keepsProcessAlive = false;
    if (this.pending.size === 0) this.socket.unref();
  }

  close(): void {
    this.shutdown(new TrellisError('ConnectionClosed', 'the client was closed'));
  }

  private receive(chunk: Buffer): void {
    let envelopes: unknown[];
    try {
      envelopes = this.decoder.push(chunk);
    } catch (error) {
      this.shutdown(error as TrellisError);
      return;
    }
    for (const envelope of envelopes) {
      // A frame before this one failed the connection: the rest are not delivered.
      if (this.socket.destroyed) return;
      if (!isReplyEnvelope(envelope)) {
        // A broken daemon (or not a daemon at all): fail this connection, never the process.
        this.shutdown(new TrellisError('ProtocolError', `${this.socketPath} sent a frame that is not a reply`));
        return;
      }
      this.deliver(envelope);
    }
  }

  private deliver(envelope: ReplyEnvelope): void {
    // Most replies carry neither grants nor drops.
    if (envelope.grants || envelope.drops) {
      try {
        this.receiveSegments(envelope);
      } catch (error) {
        this.shutdown(error as TrellisError);
        return;
      }
    }
    const waiter = this.pending.take(envelope.seq);
    if (!waiter) {
      const error = replyNotWaiting(this.socketPath, envelope);
      // seq 0: the daemon refused the connection as a whole; it closes it next. Any other reply
      // for a request that is not waiting is a bad frame, which fails this connection.
      if (envelope.seq === 0 && envelope.error) this.closedError ??= error;
      else this.shutdown(error);
      return;
    }
    if (!this.keepsProcessAlive && this.pending.size === 0) this.socket.unref();
    if (envelope.error) waiter.reject(fromWireError(envelope.error));
    else waiter.resolve(envelope.reply);
  }

  private receiveSegments(envelope: ReplyEnvelope): void {
    for (const grant of envelope.grants ?? []) {
      const { fd, tag } = native.recvFd(this.fdSocket, FD_RECEIVE_TIMEOUT_MS);
      if (tag !== grant.segment) {
        native.closeFd(fd);
        throw new TrellisError('ProtocolError', `expected the fd of segment ${grant.segment}, got ${tag}`);
      }
      this.mappings.add(grant.segment, fd, grant.size);
    }
    for (const segment of envelope.drops ?? []) this.mappings.drop(segment);
  }

  private shutdown(reason: TrellisError): void {
    if (!this.closedError) this.closedError = reason;
    this.socket.destroy();
    if (this.fdSocket >= 0) {
      native.closeFd(this.fdSocket);
      this.fdSocket = -1;
    }
    this.mappings.close();
    // Before any waiter hears of the close: nothing written from here on reaches the daemon's pool.
    for (const ref of this.writables.splice(0)) {
      const buffer = ref.deref();
      if (buffer !== undefined && buffer.byteLength > 0) native.detach(buffer);
    }
    for (const waiter of this.pending.takeAll()) waiter.reject(this.closedError);
  }
}

/** A decoded frame shaped as a reply: an object with a numeric seq (its other fields are the request's to read). */
function isReplyEnvelope(frame: unknown): frame is ReplyEnvelope {
  return frame !== null && typeof frame === 'object' && typeof (frame as { seq?: unknown }).seq === 'number';
}
