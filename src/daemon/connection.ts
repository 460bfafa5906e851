/**
 * One socket from a client. A new socket's first frame decides what it is: `register` makes it a
 * client's main connection; `attachFdChannel` makes it the fd channel of an already registered
 * client, on which the daemon only ever sends segment fds.
 *
 * Requests are handled in arrival order. Most finish at once; one that waits (for a name, or
 * for the fd channel) is answered later without holding back the others, so replies carry the
 * request's seq. A malformed frame gets a ProtocolError and closes this connection only.
 */
import { randomBytes } from 'node:crypto';
import type * as net from 'node:net';
import { TrellisError, toWireError } from '../errors';
import { encodeFrame, FrameDecoder } from '../protocol/framing';
import { PROTOCOL_VERSION, type ReplyEnvelope, type SegmentGrant } from '../protocol/messages';
import { native, type PeerCredentials } from '../native';
import { handlers, isClientKind, type RequestContext } from './dispatch';
import type { ClientSession } from './session';
import * as check from './validate';

export const FD_CHANNEL_WAIT_MS = 5000;
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** What a connection needs from the daemon that owns it. */
export interface ConnectionHost {
  readonly maxFrameBytes: number;
  readonly state: RequestContext['state'];
  countRequest(): void;
  register(connection: Connection, pid: number): ClientSession;
  mainConnection(clientId: number): Connection | undefined;
  closed(connection: Connection): void;
}

export class Connection {
  session?: ClientSession;
  readonly fdChannelToken = randomBytes(16).toString('hex');
  private fdChannel?: Connection;
  private fdChannelWaiters: Array<() => void> = [];
  private role: 'new' | 'client' | 'fdChannel' = 'new';
  private readonly decoder: FrameDecoder;
  private closing = false;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(
    readonly socket: net.Socket,
    readonly peer: PeerCredentials,
    private readonly host: ConnectionHost,
  ) {
    this.decoder = new FrameDecoder(host.maxFrameBytes);
    this.handshakeTimer = setTimeout(() => this.fail('ProtocolError', 'no handshake within 10 s'), HANDSHAKE_TIMEOUT_MS);
    this.handshakeTimer.unref();
    socket.on('data', (chunk) => this.receive(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
  }

  /** The raw fd of this socket (for sendFd on an fd channel). */
  get fd(): number {
    return (this.socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.closing) return;
    let bodies: unknown[];
    try {
      bodies = this.decoder.push(chunk);
    } catch (error) {
      this.fail('ProtocolError', (error as Error).message);
      return;
    }
    for (const body of bodies) {
      if (this.closing) return;
      this.handleFrame(body);
    }
  }

  private handleFrame(frame: unknown): void {
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.fail('ProtocolError', 'a frame must be a map with kind, seq and body');
      return;
    }
    const { kind, seq, body } = frame as { kind?: unknown; seq?: unknown; body?: unknown };
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) {
      this.fail('ProtocolError', `a frame needs an integer seq, got ${check.describe(seq)}`);
      return;
    }
    if (this.role === 'fdChannel') {
      this.fail('ProtocolError', 'an fd channel carries no requests');
      return;
    }
    if (this.role === 'new') {
      this.handshake(kind, seq, body);
      return;
    }
    if (!isClientKind(kind)) {
      this.reply({ seq, error: { code: 'ProtocolError', message: `unknown request kind ${check.describe(kind)}` } });
      return;
    }
    this.host.countRequest();
    const session = this.session!;
    const grants: SegmentGrant[] = [];
    const ctx: RequestContext = {
      state: this.host.state,
      session,
      grant: (segment) => this.grant(segment, grants),
      untilFdChannel: () => (this.fdChannel ? undefined : this.waitForFdChannel()),
    };
    const answer = (reply: unknown) => this.reply({ seq, reply: reply as never, grants });
    const refuse = (error: unknown) => this.reply({ seq, error: toWireError(error), grants });
    const handler = handlers[kind] as (c: RequestContext, b: check.Body) => unknown;
    let result: unknown;
    try {
      result = handler(ctx, check.expectBody(kind, body));
    } catch (error) {
      refuse(error);
      return;
    }
    if (result instanceof Promise) void result.then(answer, refuse);
    else answer(result);
  }

  private handshake(kind: unknown, seq: number, body: unknown): void {
    clearTimeout(this.handshakeTimer);
    try {
      const fields = check.expectBody(String(kind), body);
      if (kind === 'register') {
        const version = fields.protocolVersion;
        if (version !== PROTOCOL_VERSION) {
          throw new TrellisError('ProtocolError', `client speaks protocol ${check.describe(version)}, this daemon ${PROTOCOL_VERSION}`);
        }
        this.session = this.host.register(this, this.peer.pid);
        this.role = 'client';
        this.reply({
          seq,
          reply: {
            clientId: this.session.clientId,
            instanceId: this.host.state.instanceId,
            fdChannelToken: this.fdChannelToken,
            maxFrameBytes: this.host.maxFrameBytes,
          },
        });
      } else if (kind === 'attachFdChannel') {
        this.attachTo(fields);
      } else {
        throw new TrellisError('ProtocolError', `the first request must be register, got ${check.describe(kind)}`);
      }
    } catch (error) {
      const wire = toWireError(error);
      this.fail(wire.code, wire.message, seq);
    }
  }

  private attachTo(fields: check.Body): void {
    const clientId = check.nonNegativeInteger('attachFdChannel', fields, 'clientId');
    const main = this.host.mainConnection(clientId);
    // The token proves the channel belongs to that client; the pid check stops another process
    // of the same user from receiving its fds.
    if (!main || main.fdChannel || fields.fdChannelToken !== main.fdChannelToken || main.peer.pid !== this.peer.pid) {
      throw new TrellisError('PermissionDenied', `fd channel rejected for client ${clientId}`);
    }
    this.role = 'fdChannel';
    main.fdChannel = this;
    for (const wake of main.fdChannelWaiters.splice(0)) wake();
  }

  private waitForFdChannel(): Promise<void> {
    if (this.fdChannel) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TrellisError('Unavailable', `client ${this.session?.clientId} attached no fd channel within ${FD_CHANNEL_WAIT_MS} ms`)),
        FD_CHANNEL_WAIT_MS,
      );
      this.fdChannelWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private grant(segment: number, grants: SegmentGrant[]): void {
    const session = this.session!;
    if (session.grantedSegments.has(segment)) return;
    const channel = this.fdChannel;
    if (!channel) throw new TrellisError('Unavailable', 'this client has no fd channel');
    const { fd, size } = this.host.state.pool.segmentFd(segment);
    native.sendFd(channel.fd, fd, segment);
    session.grantedSegments.add(segment);
    grants.push({ segment, size });
  }

  private reply(envelope: ReplyEnvelope): void {
    if (this.closing || this.socket.destroyed) return;
    const drops = this.session?.droppedSegments;
    if (drops && drops.length > 0) envelope.drops = drops.splice(0);
    if (envelope.grants && envelope.grants.length === 0) delete envelope.grants;
    this.socket.write(encodeFrame(envelope));
  }

  /** Answers with an error and closes this connection only. */
  private fail(code: string, message: string, seq = 0): void {
    if (this.closing) return;
    this.reply({ seq, error: { code, message } });
    this.closing = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private onClose(): void {
    this.closing = true;
    clearTimeout(this.handshakeTimer);
    if (this.fdChannel) this.fdChannel.close();
    this.host.closed(this);
  }
}
