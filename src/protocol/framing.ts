/**
 * Frames on the socket: a 12-byte header, then a msgpack body.
 *
 *   0..1   magic 'TR'
 *   2      protocol version
 *   3      reserved, zero
 *   4..11  body length, unsigned 64-bit little endian
 *
 * The decoder rejects a bad magic, an unknown version or a length over the limit before it
 * allocates anything, so a hostile length such as 2^40 costs nothing.
 */
import { Packr, RESERVE_START_SPACE } from 'msgpackr';
import { TrellisError } from '../errors';
import { PROTOCOL_VERSION } from './messages';

export const HEADER_BYTES = 12;
export const FRAME_MAGIC = 0x5254; // 'TR' read as little-endian u16
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * msgpackr leaves the first HEADER_BYTES of its output free for us, so the header goes in front
 * of the body in the same buffer: no second allocation and no copy of the body. The buffer is a
 * slice of msgpackr's working buffer that later packs do not write over.
 */
const PACK_WITH_HEADER_ROOM = RESERVE_START_SPACE | HEADER_BYTES;

export function encodeFrame(body: unknown): Buffer {
  const frame = packr.pack(body, PACK_WITH_HEADER_ROOM);
  const length = frame.length - HEADER_BYTES;
  frame.writeUInt16LE(FRAME_MAGIC, 0);
  frame[2] = PROTOCOL_VERSION;
  frame[3] = 0;
  frame.writeUInt32LE(length % 2 ** 32, 4);
  frame.writeUInt32LE(Math.floor(length / 2 ** 32), 8);
  return frame;
}

/**
 * Turns a byte stream into decoded bodies. Throws ProtocolError on the first bad frame; the
 * caller answers and closes that connection only.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /** Feeds bytes; returns every complete body now available, in order. */
  push(chunk: Buffer): unknown[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const bodies: unknown[] = [];
    while (this.pendingBytes >= HEADER_BYTES) {
      const head = this.peek(HEADER_BYTES);
      const length = readHeader(head, this.maxFrameBytes);
      if (this.pendingBytes < HEADER_BYTES + length) break;
      const frame = this.take(HEADER_BYTES + length);
      bodies.push(decodeBody(frame.subarray(HEADER_BYTES)));
    }
    return bodies;
  }

  private peek(bytes: number): Buffer {
    if (this.pending[0].length < bytes) this.pending = [Buffer.concat(this.pending)];
    return this.pending[0];
  }

  private take(bytes: number): Buffer {
    const first = this.peek(bytes);
    const frame = first.subarray(0, bytes);
    if (first.length === bytes) this.pending.shift();
    else this.pending[0] = first.subarray(bytes);
    this.pendingBytes -= bytes;
    return frame;
  }
}

/** Validates a header and returns the body length. */
export function readHeader(head: Buffer, maxFrameBytes: number): number {
  const magic = head.readUInt16LE(0);
  if (magic !== FRAME_MAGIC) {
    throw new TrellisError('ProtocolError', `bad frame magic 0x${magic.toString(16)}: not a trellis client`);
  }
  const version = head.readUInt8(2);
  if (version !== PROTOCOL_VERSION) {
    throw new TrellisError(
      'ProtocolError',
      `unsupported protocol version ${version} (this daemon speaks ${PROTOCOL_VERSION})`,
    );
  }
  const low = head.readUInt32LE(4);
  const high = head.readUInt32LE(8);
  const length = high * 2 ** 32 + low;
  if (length > maxFrameBytes) {
    throw new TrellisError('ProtocolError', `frame of ${length} bytes exceeds the ${maxFrameBytes}-byte limit`);
  }
  return length;
}

export function decodeBody(body: Buffer): unknown {
  try {
    return packr.unpack(body);
  } catch (error) {
    throw new TrellisError('ProtocolError', `malformed frame body: ${(error as Error).message}`, { cause: error });
  }
}
