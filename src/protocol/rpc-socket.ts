/**
 * The calling end of a daemon's RPC port (TCP), shared by remote clients (client/rpc.ts) and by
 * daemons that copy objects from each other (daemon/rpc/peers.ts). It frames requests, matches
 * replies by seq, streams blob bytes in both directions without gathering them into frames, and
 * never hangs: connecting, the handshake and each request have deadlines, and a peer that misses
 * one is treated as gone.
 *
 * Socket errors become TrellisErrors here and nowhere else: a peer that cannot be reached, dies
 * or stops answering is `Unavailable` (with the system error as `cause`); a refused token is
 * `PermissionDenied`, as the daemon answers it.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { fromWireError, TrellisError } from '../errors';
import { encodeFrameWithBytes, planReads } from './bulk-frames';
import { FrameReader, type BulkConsumer } from './frame-reader';
import { PendingReplies } from './pending-replies';
import { replyNotWaiting } from './reply-not-waiting';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame } from './framing';
import {
  PROTOCOL_VERSION,
  type ByteRange,
  type Kind,
  type RegisterRpcReply,
  type ReplyEnvelope,
  type ReplyOf,
  type RequestOf,
} from './messages';
import { tlsConnectOptions, tlsFailure, type RpcTlsOptions } from './rpc-tls';

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/** Bytes per readBlobs or writeBlob frame; several are kept in flight. */
export const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;
/** readBlobs (or writeBlob) requests in flight at once while copying. */
export const READ_WINDOW = 4;
/** Replies can be larger than requests (a big listObjects); this bounds what a peer can make us allocate. */
export const MAX_REPLY_FRAME_BYTES = 4 * DEFAULT_MAX_FRAME_BYTES;
/** Room left in a writeBlob frame for its msgpack prefix. */
const FRAME_OVERHEAD_BYTES = 4096;
/** One reusable buffer for socket reads: big reads, no allocation per read. */
const READ_BUFFER_BYTES = 1024 * 1024;

export interface RpcSocketOptions {
  /** The daemon's --rpc-token, when it requires one. */
  token?: string;
  connectTimeoutMs?: number;
  /** Default deadline for a reply; 0 for none. */
  requestTimeoutMs?: number;
  /** Connect over TLS (a daemon started with --rpc-tls-cert). Default: plain TCP. */
  tls?: RpcTlsOptions;
}

export interface RequestOptions {
  /** Overrides the socket's deadline for this request; 0 for none (a request that waits on purpose). */
  timeoutMs?: number;
}

interface Pending {
  kind: string;
  resolve(reply: unknown): void;
  reject(error: Error): void;
  timeoutMs: number;
  /** performance.now() by which the reply must have come; 0 for none. */
  deadline: number;
  /** readBlobs: where the reply's bytes go as they arrive. */
  consume?: BulkConsumer;
  /** A consumer that threw: the bytes still drain, then the request fails with this. */
  consumeError?: unknown;
}

/** host:port -> its parts. Errors: InvalidArgument. */
export function parseEndpoint(endpoint: string): { host: string; port: number } {
  const match = typeof endpoint === 'string' ? /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(endpoint) : null;
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new TrellisError(
      'InvalidArgument',
      `an RPC endpoint is host:port, such as 127.0.0.1:9600; got ${JSON.stringify(endpoint)}`,
    );
  }
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

export class RpcSocket {
  registration!: RegisterRpcReply;
  private readonly pending = new PendingReplies<Pending>();
  private readonly reader: FrameReader;
  private nextSeq = 1;
  private closedError?: TrellisError;
  /** False after unref(): the socket is then ref'd only while requests are pending. */
  private keepsProcessAlive = true;
  private readonly closeHooks: Array<(error: TrellisError) => void> = [];
  /**
   * One timer for every deadline of this connection, not one per request: it is set for the
   * earliest deadline it knows of, and when it fires, checks the requests still pending. Since
   * requests mostly share one timeout, a new one rarely moves it.
   */
  private deadlineTimer?: NodeJS.Timeout;
  /** When deadlineTimer fires (performance.now()); Infinity while none is set. */
  private deadlineTimerDue = Infinity;

  private constructor(
    private readonly socket: net.Socket,
    readonly endpoint: string,
    private readonly requestTimeoutMs: number,
    private readonly overTls: boolean,
  ) {
    this.reader = new FrameReader(MAX_REPLY_FRAME_BYTES, {
      body: (body) => this.deliver(body as ReplyEnvelope),
      bulkStart: (start) => this.pending.get(start.seq)?.consume && ((bytes) => this.consume(start.seq, bytes)),
      bulkEnd: (seq) => this.finishBulk(seq),
    });
    socket.on('error', (error) =>
      this.shutdown(this.unavailable(`the connection to trellisd at ${endpoint} failed`, error)),
    );
    socket.on('close', () => this.shutdown(this.closedByPeer()));
  }

  /** Connects and registers. Errors: Unavailable, PermissionDenied, ProtocolError, InvalidArgument. */
  static async connect(endpoint: string, options: RpcSocketOptions = {}): Promise<RpcSocket> {
    const { host, port } = parseEndpoint(endpoint);
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    // Bytes arrive in a later tick than this one, which sets rpc just below.
    const receive = (bytes: Buffer) => rpc.receive(bytes);
    let socket: net.Socket;
    if (options.tls !== undefined) {
      // TLS decrypts into buffers of its own (onread is for plain sockets), so bytes come as 'data'.
      socket = tls.connect({ ...tlsConnectOptions(options.tls), host, port });
      socket.setNoDelay(true);
      socket.on('data', receive);
    } else {
      const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
      socket = net.connect({
        host,
        port,
        noDelay: true,
        onread: {
          buffer: readBuffer,
          callback: (bytes) => {
            receive(readBuffer.subarray(0, bytes));
            return true;
          },
        },
      });
    }
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const rpc = new RpcSocket(socket, endpoint, requestTimeoutMs, options.tls !== undefined);
    const connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new TrellisError(
            'Unavailable',
            `trellisd at ${endpoint} did not accept a connection within ${connectTimeoutMs} ms`,
          ),
        );
        socket.destroy();
      }, connectTimeoutMs);
      socket.once(options.tls !== undefined ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(rpc.unavailable(`cannot connect to trellisd at ${endpoint}`, error));
      });
    });
    await connected;
    try {
      rpc.registration = await rpc.request(
        'registerRpc',
        { protocolVersion: PROTOCOL_VERSION, token: options.token },
        { timeoutMs: connectTimeoutMs },
      );
    } catch (error) {
      rpc.close();
      throw error;
    }
    return rpc;
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Called once when the connection ends, for whatever reason. */
  onClose(hook: (error: TrellisError) => void): void {
    if (this.closedError) hook(this.closedError);
    else this.closeHooks.push(hook);
  }

  request<K extends Kind>(kind: K, body: RequestOf<K>, options: RequestOptions = {}): Promise<ReplyOf<K>> {
    return this.send(kind, [encodeFrame({ kind, seq: this.nextSeq, body })], options) as Promise<ReplyOf<K>>;
  }

  /**
   * writeBlob of `bytes` at `offset`, cut into frames the daemon accepts, READ_WINDOW of them in
   * flight (so each chunk's deadline counts from when the link had room for it).
   */
  async writeBlob(id: string, offset: number, bytes: Uint8Array): Promise<void> {
    const chunk = Math.max(1, Math.min(DEFAULT_CHUNK_BYTES, this.registration.maxFrameBytes - FRAME_OVERHEAD_BYTES));
    let at = 0;
    const lane = async (): Promise<void> => {
      while (at < bytes.byteLength) {
        const part = bytes.subarray(at, Math.min(at + chunk, bytes.byteLength));
        const body = { id, offset: offset + at };
        at += part.byteLength;
        await this.send(
          'writeBlob',
          encodeFrameWithBytes({ kind: 'writeBlob', seq: this.nextSeq, body }, ['body', 'data'], [part]),
          {},
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_WINDOW, Math.ceil(bytes.byteLength / chunk)) }, lane));
  }

  /**
   * Copies blobs this session holds: `sink(id, offset, bytes)` gets each piece as it arrives
   * (copy it before returning). Requests of DEFAULT_CHUNK_BYTES each, READ_WINDOW in flight.
   * Errors: Unavailable, ObjectNotFound, and whatever `sink` throws.
   */
  async readBlobs(
    blobs: ReadonlyArray<{ id: string; size: number }>,
    sink: (id: string, offset: number, bytes: Buffer) => void,
  ): Promise<void> {
    const requests = planReads(blobs, Math.min(DEFAULT_CHUNK_BYTES, this.registration.maxFrameBytes));
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < requests.length) await this.readRanges(requests[next++], sink);
    };
    await Promise.all(Array.from({ length: Math.min(READ_WINDOW, requests.length) }, lane));
  }

  /** From now on the socket keeps the process running only while a request is in flight. */
  unref(): void {
    this.keepsProcessAlive = false;
    if (this.pending.size === 0) this.socket.unref();
  }

  close(): void {
    this.shutdown(new TrellisError('ConnectionClosed', `the connection to trellisd at ${this.endpoint} was closed`));
  }

  private readRanges(ranges: ByteRange[], sink: (id: string, offset: number, bytes: Buffer) => void): Promise<unknown> {
    let range = 0;
    let within = 0;
    const consume = (bytes: Buffer): void => {
      let at = 0;
      while (at < bytes.length) {
        const { id, offset, length } = ranges[range];
        const take = Math.min(length - within, bytes.length - at);
        sink(id, offset + within, bytes.subarray(at, at + take));
        at += take;
        within += take;
        if (within === length) {
          range++;
          within = 0;
        }
      }
    };
    return this.send(
      'readBlobs',
      [encodeFrame({ kind: 'readBlobs', seq: this.nextSeq, body: { ranges } })],
      {},
      consume,
    );
  }

  /** Sends frames already encoded with seq = nextSeq. */
  private send(kind: string, frames: Buffer[], options: RequestOptions, consume?: BulkConsumer): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (!this.keepsProcessAlive && this.pending.size === 0) this.socket.ref();
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
      const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : 0;
      this.pending.set(seq, { kind, resolve, reject, timeoutMs, deadline, consume });
      if (deadline > 0 && deadline < this.deadlineTimerDue) this.setDeadlineTimer(deadline);
      if (frames.length === 1) {
        this.socket.write(frames[0]);
        return;
      }
      this.socket.cork();
      for (const frame of frames) this.socket.write(frame);
      this.socket.uncork();
    });
  }

  private setDeadlineTimer(due: number): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimerDue = due;
    this.deadlineTimer = setTimeout(() => this.checkDeadlines(), Math.max(1, Math.ceil(due - performance.now())));
    // A request in flight keeps the socket, and so the process, running; the timer need not.
    this.deadlineTimer.unref();
  }

  /** A request past its deadline closes the connection (the peer is treated as gone). */
  private checkDeadlines(): void {
    this.deadlineTimer = undefined;
    this.deadlineTimerDue = Infinity;
    if (this.closedError) return;
    const now = performance.now();
    let missed: Pending | undefined;
    let next = Infinity;
    this.pending.forEach((pending) => {
      if (pending.deadline === 0) return;
      if (pending.deadline <= now) {
        if (missed === undefined || pending.deadline < missed.deadline) missed = pending;
      } else if (pending.deadline < next) {
        next = pending.deadline;
      }
    });
    if (missed !== undefined) {
      this.shutdown(
        new TrellisError(
          'Unavailable',
          `trellisd at ${this.endpoint} did not answer ${missed.kind} within ${missed.timeoutMs} ms`,
        ),
      );
    } else if (next !== Infinity) {
      this.setDeadlineTimer(next);
    }
  }

  private receive(chunk: Buffer): void {
    if (this.closedError) return;
    try {
      this.reader.push(chunk);
    } catch (error) {
      this.shutdown(error instanceof TrellisError ? error : new TrellisError('ProtocolError', String(error)));
    }
  }

  private consume(seq: number, bytes: Buffer): void {
    const pending = this.pending.get(seq)!;
    if (pending.consumeError !== undefined) return;
    try {
      pending.consume!(bytes);
    } catch (error) {
      pending.consumeError = error;
    }
  }

  private finishBulk(seq: number): void {
    const pending = this.take(seq);
    if (!pending) return;
    if (pending.consumeError !== undefined) pending.reject(pending.consumeError as Error);
    else pending.resolve({});
  }

  private deliver(envelope: ReplyEnvelope): void {
    if (typeof envelope !== 'object' || envelope === null || typeof envelope.seq !== 'number') {
      this.shutdown(new TrellisError('ProtocolError', `trellisd at ${this.endpoint} sent a reply without a seq`));
      return;
    }
    // A frame before this one in the same read failed the connection.
    if (this.closedError) return;
    const pending = this.take(envelope.seq);
    if (!pending) {
      // An error with seq 0 is the daemon refusing the connection as a whole; any other reply
      // for a request not waiting is a bad frame (a timed-out request closed the connection).
      this.shutdown(replyNotWaiting(`trellisd at ${this.endpoint}`, envelope));
      return;
    }
    if (envelope.error) pending.reject(fromWireError(envelope.error));
    else if (pending.consume) this.deliverBulkWhole(pending, envelope.reply as { data?: unknown });
    else pending.resolve(envelope.reply);
  }

  /** A readBlobs reply that came as an ordinary frame (an empty one, say). */
  private deliverBulkWhole(pending: Pending, reply: { data?: unknown } | undefined): void {
    const data = reply?.data;
    if (!(data instanceof Uint8Array)) {
      pending.reject(new TrellisError('ProtocolError', `trellisd at ${this.endpoint} answered readBlobs without data`));
      return;
    }
    try {
      pending.consume!(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      pending.resolve({});
    } catch (error) {
      pending.reject(error as Error);
    }
  }

  private take(seq: number): Pending | undefined {
    const pending = this.pending.take(seq);
    if (!pending) return undefined;
    if (!this.keepsProcessAlive && this.pending.size === 0) this.socket.unref();
    return pending;
  }

  private closedByPeer(): TrellisError {
    // Closed before the handshake's answer: most likely a TLS port, which drops a plain client unanswered.
    const hint =
      this.registration === undefined && !this.overTls
        ? ' before answering the handshake; a daemon serving TLS (--rpc-tls-cert) drops plain connections: ' +
          'connect with { tls }'
        : '';
    return new TrellisError('Unavailable', `trellisd at ${this.endpoint} closed the connection${hint}`);
  }

  private unavailable(what: string, error: Error): TrellisError {
    const refused = this.overTls ? tlsFailure(this.endpoint, error) : undefined;
    if (refused) return refused;
    const code = (error as NodeJS.ErrnoException).code;
    return new TrellisError('Unavailable', `${what}: ${code ?? error.message}`, { cause: error });
  }

  private shutdown(reason: TrellisError): void {
    if (this.closedError) return;
    this.closedError = reason;
    this.socket.destroy();
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    for (const pending of this.pending.takeAll()) pending.reject(reason);
    for (const hook of this.closeHooks.splice(0)) hook(reason);
  }
}
