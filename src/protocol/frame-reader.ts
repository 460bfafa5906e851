/**
 * A frame decoder for the receiving end of the RPC port that does not gather big frames. It reads
 * the header and the first bytes of each body; a readBlobs reply (bulk-frames.ts) is then handed
 * to its destination piece by piece as the bytes arrive, so a gigabyte moves with one copy out of
 * the socket's read buffer. Every other frame is gathered and decoded as framing.ts does.
 *
 * push() takes chunks that may be reused once it returns (a socket's `onread` buffer): anything
 * kept is copied, and a bulk consumer must copy what it is given before returning.
 */
import { BULK_PREFIX_PEEK_BYTES, matchBulkReply, type BulkReplyStart } from './bulk-frames';
import { decodeBody, HEADER_BYTES, readHeader } from './framing';

export type BulkConsumer = (bytes: Buffer) => void;

export interface FrameHandlers {
  /** A whole frame body, decoded. */
  body(body: unknown): void;
  /** A bulk reply begins: a consumer for its data, or undefined to have it decoded whole. */
  bulkStart(start: BulkReplyStart): BulkConsumer | undefined;
  /** Every byte of the bulk reply `seq` was consumed. */
  bulkEnd(seq: number): void;
}

type State =
  | { step: 'header' }
  | { step: 'peek'; bodyBytes: number }
  | { step: 'gather'; body: Buffer; filled: number }
  | { step: 'stream'; seq: number; left: number; consume: BulkConsumer };

export class FrameReader {
  private state: State = { step: 'header' };
  private readonly head = Buffer.alloc(HEADER_BYTES);
  private readonly peek = Buffer.alloc(BULK_PREFIX_PEEK_BYTES);
  private filled = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly handlers: FrameHandlers,
  ) {}

  /** Throws ProtocolError on a bad header or body; the caller closes the connection. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const state = this.state;
      switch (state.step) {
        case 'header': {
          at += this.fill(this.head, HEADER_BYTES, chunk, at);
          if (this.filled < HEADER_BYTES) return;
          const bodyBytes = readHeader(this.head, this.maxFrameBytes);
          this.filled = 0;
          this.state = { step: 'peek', bodyBytes };
          if (bodyBytes === 0) this.finishPeek(bodyBytes);
          break;
        }
        case 'peek': {
          const wanted = Math.min(state.bodyBytes, BULK_PREFIX_PEEK_BYTES);
          at += this.fill(this.peek, wanted, chunk, at);
          if (this.filled === wanted) this.finishPeek(state.bodyBytes);
          break;
        }
        case 'gather': {
          const take = Math.min(state.body.length - state.filled, chunk.length - at);
          chunk.copy(state.body, state.filled, at, at + take);
          state.filled += take;
          at += take;
          if (state.filled === state.body.length) this.deliver(state.body);
          break;
        }
        case 'stream': {
          const take = Math.min(state.left, chunk.length - at);
          state.left -= take;
          state.consume(chunk.subarray(at, at + take));
          at += take;
          if (state.left === 0) this.endStream(state.seq);
          break;
        }
      }
    }
  }

  private fill(target: Buffer, wanted: number, chunk: Buffer, at: number): number {
    const take = Math.min(wanted - this.filled, chunk.length - at);
    chunk.copy(target, this.filled, at, at + take);
    this.filled += take;
    return take;
  }

  /** The first bytes of a body are in: stream it if it is a bulk reply someone wants, else gather it. */
  private finishPeek(bodyBytes: number): void {
    const peeked = this.peek.subarray(0, this.filled);
    this.filled = 0;
    const start = matchBulkReply(peeked, bodyBytes);
    const consume = start && this.handlers.bulkStart(start);
    if (start && consume) {
      const data = peeked.subarray(start.prefixBytes);
      const left = start.dataBytes - data.length;
      this.state = { step: 'stream', seq: start.seq, left, consume };
      if (data.length > 0) consume(data);
      if (left === 0) this.endStream(start.seq);
      return;
    }
    const body = Buffer.allocUnsafe(bodyBytes);
    peeked.copy(body);
    if (peeked.length === bodyBytes) this.deliver(body);
    else this.state = { step: 'gather', body, filled: peeked.length };
  }

  private deliver(body: Buffer): void {
    this.state = { step: 'header' };
    this.handlers.body(decodeBody(body));
  }

  private endStream(seq: number): void {
    this.state = { step: 'header' };
    this.handlers.bulkEnd(seq);
  }
}
