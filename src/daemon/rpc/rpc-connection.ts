/**
 * One TCP connection on the RPC port: a remote client, or another daemon copying objects. The
 * same frames and kinds as the UNIX socket, answered by the same dispatch table, except that no
 * fd can cross: segment grants are skipped and bytes move through readBlobs and writeBlob
 * (byte-handlers.ts) instead.
 *
 * The first frame must be registerRpc, with the daemon's token when it has one. A malformed
 * frame, an oversize length or a failed handshake gets an error and closes this connection only.
 */
import type * as net from 'node:net';
import { TrellisError, toWireError } from '../../errors';
import { encodeFrameWithBytes } from '../../protocol/bulk-frames';
import { encodeFrame, FrameDecoder } from '../../protocol/framing';
import { PROTOCOL_VERSION, type RegisterRpcReply, type ReplyEnvelope } from '../../protocol/messages';
import { HANDSHAKE_TIMEOUT_MS } from '../connection';
import { handlers, isClientKind, type RequestContext } from '../dispatch';
import type { ClientSession } from '../session';
import * as check from '../validate';
import { byteHandlers, BytesReply, isByteKind } from './byte-handlers';

/** What a remote session needs from the daemon. */
export interface SessionHost {
  readonly state: RequestContext['state'];
  readonly maxFrameBytes: number;
  countRequest(): void;
  /** A session for a remote client or a daemon job, counted as a client until closed. */
  openSession(pid: number): ClientSession;
  /** Reclaims what the session had, as for a local client that disconnects. */
  closeSession(session: ClientSession): void;
}

export class RpcConnection {
  private session?: ClientSession;
  private readonly decoder: FrameDecoder;
  private closing = false;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(
    private readonly socket: net.Socket,
    private readonly host: SessionHost,
    private readonly tokenMatches: (token: unknown) => boolean,
    private readonly onClosed: (connection: RpcConnection) => void,
  ) {
    this.decoder = new FrameDecoder(host.maxFrameBytes);
    this.handshakeTimer = setTimeout(() => this.fail('ProtocolError', `no handshake within ${HANDSHAKE_TIMEOUT_MS / 1000} s`), HANDSHAKE_TIMEOUT_MS);
    this.handshakeTimer.unref();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
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
    if (!this.session) {
      this.handshake(kind, seq, body);
      return;
    }
    this.host.countRequest();
    const ctx: RequestContext = { state: this.host.state, session: this.session, grant: () => undefined, untilFdChannel: () => undefined };
    let result: unknown;
    try {
      if (isByteKind(kind)) {
        const handler = byteHandlers[kind] as (c: RequestContext, b: check.Body, maxBytes: number) => unknown;
        result = handler(ctx, check.expectBody(kind, body), this.host.maxFrameBytes);
      } else if (isClientKind(kind)) {
        result = (handlers[kind] as (c: RequestContext, b: check.Body) => unknown)(ctx, check.expectBody(kind, body));
      } else {
        throw new TrellisError('ProtocolError', `unknown request kind ${check.describe(kind)} on the RPC port`);
      }
    } catch (error) {
      this.reply({ seq, error: toWireError(error) });
      return;
    }
    if (result instanceof Promise) {
      void result.then(
        (reply) => this.reply({ seq, reply: reply as never }),
        (error) => this.reply({ seq, error: toWireError(error) }),
      );
    } else if (result instanceof BytesReply) {
      this.replyWithBytes(seq, result.parts);
    } else {
      this.reply({ seq, reply: result as never });
    }
  }

  private handshake(kind: unknown, seq: number, body: unknown): void {
    clearTimeout(this.handshakeTimer);
    try {
      if (kind !== 'registerRpc') {
        throw new TrellisError('ProtocolError', `the first request on the RPC port must be registerRpc, got ${check.describe(kind)}`);
      }
      const fields = check.expectBody('registerRpc', body);
      if (fields.protocolVersion !== PROTOCOL_VERSION) {
        throw new TrellisError('ProtocolError', `client speaks protocol ${check.describe(fields.protocolVersion)}, this daemon ${PROTOCOL_VERSION}`);
      }
      if (!this.tokenMatches(fields.token)) {
        throw new TrellisError('PermissionDenied', `RPC handshake refused: ${fields.token === undefined || fields.token === null ? 'this daemon requires a token' : 'wrong token'}`);
      }
      this.session = this.host.openSession(0);
      const reply: RegisterRpcReply = { clientId: this.session.clientId, instanceId: this.host.state.instanceId, maxFrameBytes: this.host.maxFrameBytes };
      this.reply({ seq, reply });
    } catch (error) {
      const wire = toWireError(error);
      this.fail(wire.code, wire.message, seq);
    }
  }

  private reply(envelope: ReplyEnvelope): void {
    if (this.closing || this.socket.destroyed) return;
    this.socket.write(encodeFrame(envelope));
  }

  /** The frame goes out as its prefix and then the views themselves: no copy of the bytes. */
  private replyWithBytes(seq: number, parts: Uint8Array[]): void {
    if (this.closing || this.socket.destroyed) return;
    const frames = encodeFrameWithBytes({ seq, reply: {} }, ['reply', 'data'], parts);
    this.socket.cork();
    for (const frame of frames) this.socket.write(frame);
    this.socket.uncork();
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
    if (this.session) this.host.closeSession(this.session);
    this.session = undefined;
    this.onClosed(this);
  }
}
