/**
 * What every daemon connection does the same way, on the UNIX socket and on the RPC port: decode
 * frames, check each is `{ kind, seq, body }`, time out a missing handshake, answer requests (at
 * once, or later for a handler that waits) and, on a bad frame, answer ProtocolError and close
 * this connection only. Subclasses decide what the handshake is and which handlers answer.
 *
 * A peer that sends requests but does not read the replies (stopped, hung, or hostile) would make
 * the daemon buffer replies without bound. Past MAX_UNSENT_REPLY_BYTES of unsent replies the
 * connection stops reading requests, and frames already decoded wait, until the socket drains:
 * the peer's own socket then fills, and its writes wait, as TCP flow control would have it.
 */
import type * as net from 'node:net';
import { toWireError } from '../errors';
import { encodeFrame, FrameDecoder } from '../protocol/framing';
import type { ReplyEnvelope } from '../protocol/messages';
import { daemonLog } from './log';
import type { KindStats } from './request-stats';
import * as check from './validate';

export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Unsent reply bytes on one connection past which the daemon reads no more of its requests. */
export const MAX_UNSENT_REPLY_BYTES = 8 * 1024 * 1024;

export abstract class FramedConnection {
  protected closing = false;
  private handshaken = false;
  private readonly decoder: FrameDecoder;
  private readonly handshakeTimer: NodeJS.Timeout;
  /** Decoded frames not handled yet because the peer is not reading its replies. */
  private backlog: unknown[] = [];
  private waitingForDrain = false;

  constructor(
    readonly socket: net.Socket,
    maxFrameBytes: number,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    this.handshakeTimer = setTimeout(
      () => this.fail('ProtocolError', `no handshake within ${HANDSHAKE_TIMEOUT_MS / 1000} s`),
      HANDSHAKE_TIMEOUT_MS,
    );
    this.handshakeTimer.unref();
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closing = true;
      clearTimeout(this.handshakeTimer);
      this.closed();
    });
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }

  /** The first frame: registers the connection, or throws to refuse it (and close). */
  protected abstract handshake(kind: unknown, seq: number, body: unknown): void;
  /** Every later frame. */
  protected abstract request(kind: unknown, seq: number, body: unknown): void;
  /** The socket closed: let go of what the connection had. */
  protected abstract closed(): void;

  /** This connection is being closed for a protocol error: one log line, naming the peer. */
  protected failed(code: string, message: string): void {
    daemonLog().warn(
      { remote: `${this.socket.remoteAddress}:${this.socket.remotePort}`, code },
      `closed a connection: ${message}`,
    );
  }

  /** Sends the reply of a handler's result, now or when its promise settles; `stats` counts it. */
  protected respond(seq: number, run: () => unknown, stats?: KindStats, started = 0): void {
    let result: unknown;
    try {
      result = run();
    } catch (error) {
      stats?.failed(error);
      this.reply({ seq, error: toWireError(error) });
      stats?.finished(started);
      return;
    }
    if (result instanceof Promise) {
      void result.then(
        (reply) => {
          this.reply({ seq, reply: reply as never });
          stats?.finished(started);
        },
        (error) => {
          stats?.failed(error);
          this.reply({ seq, error: toWireError(error) });
          stats?.finished(started);
        },
      );
    } else {
      this.reply({ seq, reply: result as never });
      stats?.finished(started);
    }
  }

  protected reply(envelope: ReplyEnvelope): void {
    this.send([encodeFrame(envelope)]);
  }

  /**
   * Writes one reply made of `parts` (a frame, or a prefix and the views it carries), and stops
   * reading requests while more than MAX_UNSENT_REPLY_BYTES wait to be sent.
   */
  protected send(parts: readonly Uint8Array[]): void {
    if (this.closing || this.socket.destroyed) return;
    if (parts.length === 1) {
      this.socket.write(parts[0]);
    } else {
      this.socket.cork();
      for (const part of parts) this.socket.write(part);
      this.socket.uncork();
    }
    if (!this.waitingForDrain && this.socket.writableLength > MAX_UNSENT_REPLY_BYTES) {
      this.waitingForDrain = true;
      this.socket.pause();
      this.socket.once('drain', () => {
        this.waitingForDrain = false;
        this.socket.resume();
        this.handleBacklog();
      });
    }
  }

  /** Answers with an error and closes this connection only. */
  protected fail(code: string, message: string, seq = 0): void {
    if (this.closing) return;
    this.failed(code, message);
    this.reply({ seq, error: { code, message } });
    this.closing = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private receive(chunk: Buffer): void {
    if (this.closing) return;
    try {
      // Straight into the backlog: most chunks are one request, handled at once below.
      this.decoder.push(chunk, this.backlog);
    } catch (error) {
      this.fail('ProtocolError', (error as Error).message);
      return;
    }
    this.handleBacklog();
  }

  private handleBacklog(): void {
    let next = 0;
    // The replies to every request in this chunk (a client with many in flight sends many in
    // one chunk) leave in one writev instead of one write system call each.
    const batched = this.backlog.length > 1;
    if (batched) this.socket.cork();
    try {
      while (next < this.backlog.length && !this.waitingForDrain) {
        if (this.closing) break;
        this.frame(this.backlog[next++]);
      }
    } finally {
      if (batched) this.socket.uncork();
    }
    if (this.closing || next === this.backlog.length) {
      // Emptied by pop, not `length = 0`: V8 frees the store of an array whose length is set to 0,
      // and the next request's push would allocate it again (~150 bytes and ~0.15 µs a request).
      while (this.backlog.length > 0) this.backlog.pop();
    } else this.backlog.splice(0, next);
  }

  private frame(frame: unknown): void {
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.fail('ProtocolError', 'a frame must be a map with kind, seq and body');
      return;
    }
    const { kind, seq, body } = frame as { kind?: unknown; seq?: unknown; body?: unknown };
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) {
      this.fail('ProtocolError', `a frame needs an integer seq, got ${check.describe(seq)}`);
      return;
    }
    if (this.handshaken) {
      this.request(kind, seq, body);
      return;
    }
    clearTimeout(this.handshakeTimer);
    try {
      this.handshake(kind, seq, body);
      this.handshaken = true;
    } catch (error) {
      const wire = toWireError(error);
      this.fail(wire.code, wire.message, seq);
    }
  }
}
