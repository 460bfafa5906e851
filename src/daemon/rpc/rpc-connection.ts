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
import { PROTOCOL_VERSION, type RegisterRpcReply } from '../../protocol/messages';
import { unknownKindMessage } from '../../protocol/unknown-kind';
import { handlers, isClientKind } from '../dispatch';
import type { DaemonState, RequestContext } from '../request-context';
import { FramedConnection } from '../framed-connection';
import { afterNameReads } from '../name-reads';
import type { KindStats } from '../request-stats';
import type { ClientSession } from '../session';
import * as check from '../validate';
import { byteHandlers, BytesReply, isByteKind } from './byte-handlers';

/** What a remote session needs from the daemon. */
export interface SessionHost {
  readonly state: DaemonState;
  readonly maxFrameBytes: number;
  /** Counts a request of a known kind; its stats time it when metrics are on. */
  countRequest(kind: string): KindStats;
  /** A session for a remote client, counted as a client until closed. */
  openSession(pid: number): ClientSession;
  /** Reclaims what the session had, as for a local client that disconnects. */
  closeSession(session: ClientSession): void;
}

export class RpcConnection extends FramedConnection {
  private session?: ClientSession;

  constructor(
    socket: net.Socket,
    private readonly host: SessionHost,
    private readonly tokenMatches: (token: unknown) => boolean,
    private readonly onClosed: (connection: RpcConnection) => void,
  ) {
    super(socket, host.maxFrameBytes);
    socket.setNoDelay(true);
  }

  protected request(kind: unknown, seq: number, body: unknown): void {
    // Local clients' resolved puts are in the store before a peer or a remote client looks.
    this.host.state.putRings.drainAll();
    // An unknown kind is counted under one label: a peer cannot grow the table with made-up kinds.
    const stats = this.host.countRequest(isByteKind(kind) || isClientKind(kind) ? kind : 'unknown');
    const started = stats.started();
    const ctx: RequestContext = {
      state: this.host.state,
      session: this.session!,
      grant: () => undefined,
      untilFdChannel: () => undefined,
    };
    if (isByteKind(kind)) {
      const handler = byteHandlers[kind] as (c: RequestContext, b: check.Body, maxBytes: number) => unknown;
      let result: unknown;
      try {
        result = handler(ctx, check.expectBody(kind, body), this.host.maxFrameBytes);
      } catch (error) {
        stats.failed(error);
        this.reply({ seq, error: toWireError(error) });
        stats.finished(started);
        return;
      }
      if (result instanceof BytesReply) {
        this.replyWithBytes(seq, result.parts);
        stats.finished(started);
      } else {
        this.respond(seq, () => result, stats, started);
      }
      return;
    }
    if (!isClientKind(kind)) {
      this.reply({
        seq,
        error: { code: 'ProtocolError', message: unknownKindMessage(check.describe(kind), ' on the RPC port') },
      });
      return;
    }
    const handler = handlers[kind] as (c: RequestContext, b: check.Body) => unknown;
    // Names as for a local client: not from a view this daemon cannot vouch for (name-reads.ts).
    const run = () => handler(ctx, check.expectBody(kind, body));
    this.respond(seq, () => afterNameReads(this.host.state.meta, kind, body, run), stats, started);
  }

  protected handshake(kind: unknown, seq: number, body: unknown): void {
    if (kind !== 'registerRpc') {
      throw new TrellisError(
        'ProtocolError',
        `the first request on the RPC port must be registerRpc, got ${check.describe(kind)}`,
      );
    }
    const fields = check.expectBody('registerRpc', body);
    if (fields.protocolVersion !== PROTOCOL_VERSION) {
      throw new TrellisError(
        'ProtocolError',
        `client speaks protocol ${check.describe(fields.protocolVersion)}, this daemon ${PROTOCOL_VERSION}`,
      );
    }
    if (!this.tokenMatches(fields.token)) {
      throw new TrellisError(
        'PermissionDenied',
        `RPC handshake refused: ${fields.token === undefined || fields.token === null ? 'this daemon requires a token' : 'wrong token'}`,
      );
    }
    this.session = this.host.openSession(0);
    const reply: RegisterRpcReply = {
      clientId: this.session.clientId,
      instanceId: this.host.state.instanceId,
      maxFrameBytes: this.host.maxFrameBytes,
    };
    this.reply({ seq, reply });
  }

  /** The frame goes out as its prefix and then the views themselves: no copy of the bytes. */
  private replyWithBytes(seq: number, parts: Uint8Array[]): void {
    this.send(encodeFrameWithBytes({ seq, reply: {} }, ['reply', 'data'], parts));
  }

  protected closed(): void {
    if (this.session) this.host.closeSession(this.session);
    this.session = undefined;
    this.onClosed(this);
  }
}
