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
import { toWireError, TrellisError } from '../errors';
import { PROTOCOL_VERSION, type ReplyEnvelope, type SegmentGrant } from '../protocol/messages';
import { READ_INDEX_HOLDS_SEGMENT, READ_INDEX_SEGMENT } from '../protocol/read-index-layout';
import { unknownKindMessage } from '../protocol/unknown-kind';
import { native, type PeerCredentials } from '../native';
import { handlers, isClientKind } from './dispatch';
import { daemonLog } from './log';
import { nameReadsPending } from './name-reads';
import type { DaemonState, RequestContext } from './request-context';
import type { KindStats } from './request-stats';
import { FramedConnection } from './framed-connection';
import type { ClientSession } from './session';
import * as check from './validate';

export const FD_CHANNEL_WAIT_MS = 5000;
export { HANDSHAKE_TIMEOUT_MS } from './framed-connection';

/** What a connection needs from the daemon that owns it. */
export interface ConnectionHost {
  readonly maxFrameBytes: number;
  readonly state: DaemonState;
  /** Counts a request of a known kind; its stats time it when metrics are on. */
  countRequest(kind: string): KindStats;
  register(connection: Connection, pid: number): ClientSession;
  mainConnection(clientId: number): Connection | undefined;
  closed(connection: Connection): void;
}

export class Connection extends FramedConnection {
  session?: ClientSession;
  readonly fdChannelToken = randomBytes(16).toString('hex');
  private fdChannel?: Connection;
  private fdChannelWaiters: Array<() => void> = [];
  private role: 'new' | 'client' | 'fdChannel' = 'new';

  constructor(
    socket: net.Socket,
    readonly peer: PeerCredentials,
    private readonly host: ConnectionHost,
  ) {
    super(socket, host.maxFrameBytes);
  }

  /** The raw fd of this socket (for sendFd on an fd channel). */
  get fd(): number {
    return (this.socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
  }

  protected request(kind: unknown, seq: number, body: unknown): void {
    if (this.role === 'fdChannel') {
      this.fail('ProtocolError', 'an fd channel carries no requests');
      return;
    }
    if (!isClientKind(kind)) {
      this.reply({ seq, error: { code: 'ProtocolError', message: unknownKindMessage(check.describe(kind)) } });
      return;
    }
    // Every put a client has resolved is in the store before any request is handled (put-rings.ts).
    this.host.state.putRings.drainAll();
    if (kind === 'drainPutRing') {
      // A doorbell: the drain above was all of it. Not counted in status().requests, as a get
      // from the read index is not: neither is a question the client asked.
      this.reply({ seq, reply: {} });
      return;
    }
    const stats = this.host.countRequest(kind);
    const started = stats.started();
    const scope = new RequestScope(this, this.host.state, this.session!);
    const handler = handlers[kind] as (c: RequestContext, b: check.Body) => unknown;
    let result: unknown;
    try {
      // A cluster daemon that cannot vouch for its names waits to hear from etcd first, then
      // reads the names it does not hold. No closure when it waits for nothing (most requests).
      const waiting = nameReadsPending(this.host.state.meta, kind, body);
      result = waiting ? runAfter(waiting, handler, scope, kind, body) : handler(scope, check.expectBody(kind, body));
    } catch (error) {
      stats.failed(error);
      this.answer(scope, { seq, error: toWireError(error) }, stats, started);
      return;
    }
    if (result instanceof Promise) this.answerWhenSettled(scope, seq, result, stats, started);
    else this.answer(scope, { seq, reply: result as never }, stats, started);
  }

  /** A handler that waits: its answer once it settles (a method of its own: request makes no closure). */
  private answerWhenSettled(
    scope: RequestScope,
    seq: number,
    result: Promise<unknown>,
    stats: KindStats,
    started: number,
  ): void {
    void result.then(
      (reply) => this.answer(scope, { seq, reply: reply as never }, stats, started),
      (error) => {
        stats.failed(error);
        this.answer(scope, { seq, error: toWireError(error) }, stats, started);
      },
    );
  }

  /** Replies to a request, naming the segments whose fds it sent (they precede this reply). */
  private answer(scope: RequestScope, envelope: ReplyEnvelope, stats: KindStats, started: number): void {
    if (scope.grants) envelope.grants = scope.grants;
    this.reply(envelope);
    stats.finished(started);
  }

  /** The client broke the protocol outside a frame (its put ring): it is disconnected. */
  violated(message: string): void {
    this.fail('ProtocolError', message);
  }

  protected override failed(code: string, message: string): void {
    const session = this.session;
    if (session) session.evicted = true;
    daemonLog().warn(
      { pid: this.peer.pid, uid: this.peer.uid, client: session?.clientId, code },
      `closed a client connection: ${message}`,
    );
  }

  protected handshake(kind: unknown, seq: number, body: unknown): void {
    const fields = check.expectBody(String(kind), body);
    if (kind === 'register') {
      const version = fields.protocolVersion;
      if (version !== PROTOCOL_VERSION) {
        throw new TrellisError(
          'ProtocolError',
          `client speaks protocol ${check.describe(version)}, this daemon ${PROTOCOL_VERSION}`,
        );
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

  /** For RequestContext.untilFdChannel. */
  untilFdChannel(): Promise<void> | undefined {
    return this.fdChannel ? undefined : this.waitForFdChannel();
  }

  private waitForFdChannel(): Promise<void> {
    if (this.fdChannel) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new TrellisError(
              'Unavailable',
              `client ${this.session?.clientId} attached no fd channel within ${FD_CHANNEL_WAIT_MS} ms`,
            ),
          ),
        FD_CHANNEL_WAIT_MS,
      );
      this.fdChannelWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * For RequestContext.grant: sends the segment's fd on the fd channel unless this client has it
   * already; returns what the reply must say about it, or undefined when nothing was sent.
   */
  grant(segment: number): SegmentGrant | undefined {
    const session = this.session!;
    if (session.grantedSegments.has(segment)) return undefined;
    const channel = this.fdChannel;
    if (!channel) throw new TrellisError('Unavailable', 'this client has no fd channel');
    const index = this.host.state.readIndex;
    const { fd, size } =
      segment === READ_INDEX_SEGMENT && index
        ? index.segment
        : segment === READ_INDEX_HOLDS_SEGMENT && index
          ? index.openHolds(session.clientId)
          : this.host.state.pool.segmentFd(segment);
    native.sendFd(channel.fd, fd, segment);
    session.grantedSegments.add(segment);
    return { segment, size };
  }

  /** Every reply also tells the client which segments the daemon released since the last. */
  protected override reply(envelope: ReplyEnvelope): void {
    const drops = this.session?.droppedSegments;
    if (drops && drops.length > 0) envelope.drops = drops.splice(0);
    super.reply(envelope);
  }

  protected closed(): void {
    if (this.fdChannel) this.fdChannel.close();
    this.host.closed(this);
  }
}

/** Runs a request's handler once the names it reads are in (name-reads.ts). */
function runAfter(
  waiting: Promise<void>,
  handler: (c: RequestContext, b: check.Body) => unknown,
  scope: RequestContext,
  kind: string,
  body: unknown,
): Promise<unknown> {
  return waiting.then(() => handler(scope, check.expectBody(kind, body)));
}

/**
 * The RequestContext of one request. A class rather than an object of closures, since there is
 * one per request; it collects the segments the request granted, which its reply lists.
 */
class RequestScope implements RequestContext {
  /** Made on the first grant: most requests grant nothing. */
  grants?: SegmentGrant[];
  readonly mapsSegments = true;

  constructor(
    private readonly connection: Connection,
    readonly state: DaemonState,
    readonly session: ClientSession,
  ) {}

  grant(segment: number): void {
    const granted = this.connection.grant(segment);
    if (granted) (this.grants ??= []).push(granted);
  }

  untilFdChannel(): Promise<void> | undefined {
    return this.connection.untilFdChannel();
  }
}
