/**
 * Frames that carry blob bytes, for the RPC port (readBlobs replies, writeBlob requests). They
 * are ordinary frames (framing.ts): a header, then a msgpack map whose last entry is one binary.
 * What is special is how they are made and read:
 *
 * - The sender writes the small msgpack prefix and then the blob bytes straight from where they
 *   are (shared memory, a user's Buffer), as separate socket writes: no copy into a frame.
 * - A receiver that recognizes a readBlobs reply from its first bytes can stream the binary to
 *   its destination as it arrives instead of gathering the frame first (see frame-reader.ts).
 *
 * Any msgpack decoder reads these frames the same as frames from encodeFrame.
 */
import { Packr } from 'msgpackr';
import { TrellisError } from '../errors';
import { FRAME_MAGIC, HEADER_BYTES } from './framing';
import { PROTOCOL_VERSION, type ByteRange } from './messages';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

const FIXMAP = 0x80;
const MAP16 = 0xde;
const BIN32 = 0xc6;

/**
 * The frame for `body` with the bytes of `parts`, back to back, as one binary at `path` (a chain
 * of keys ending at the binary's key). Returns the header plus prefix, then the parts themselves:
 * write them in order, without copying. Keys whose value is undefined are left out.
 */
export function encodeFrameWithBytes(
  body: Record<string, unknown>,
  path: readonly string[],
  parts: readonly Uint8Array[],
): Buffer[] {
  const dataBytes = parts.reduce((total, part) => total + part.byteLength, 0);
  const prefix: Buffer[] = [];
  encodeLevel(body, path, dataBytes, prefix);
  const head = Buffer.concat(prefix);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + head.length);
  const bodyLength = head.length + dataBytes;
  frame.writeUInt16LE(FRAME_MAGIC, 0);
  frame.writeUInt8(PROTOCOL_VERSION, 2);
  frame.writeUInt8(0, 3);
  frame.writeUInt32LE(bodyLength % 2 ** 32, 4);
  frame.writeUInt32LE(Math.floor(bodyLength / 2 ** 32), 8);
  head.copy(frame, HEADER_BYTES);
  return [
    frame,
    ...parts
      .filter((part) => part.byteLength > 0)
      .map((part) => Buffer.from(part.buffer, part.byteOffset, part.byteLength)),
  ];
}

function encodeLevel(level: Record<string, unknown>, path: readonly string[], dataBytes: number, out: Buffer[]): void {
  const [key, ...rest] = path;
  const entries = Object.entries(level).filter(([name, value]) => name !== key && value !== undefined);
  out.push(mapHeader(entries.length + 1));
  for (const [name, value] of entries) out.push(packr.pack(name), packr.pack(value));
  out.push(packr.pack(key));
  if (rest.length > 0) {
    const inner = level[key];
    encodeLevel(
      typeof inner === 'object' && inner !== null ? (inner as Record<string, unknown>) : {},
      rest,
      dataBytes,
      out,
    );
    return;
  }
  const bin = Buffer.allocUnsafe(5);
  bin.writeUInt8(BIN32, 0);
  bin.writeUInt32BE(dataBytes, 1);
  out.push(bin);
}

function mapHeader(count: number): Buffer {
  if (count < 16) return Buffer.from([FIXMAP | count]);
  const header = Buffer.allocUnsafe(3);
  header.writeUInt8(MAP16, 0);
  header.writeUInt16BE(count, 1);
  return header;
}

/** Where a readBlobs reply's bytes start in its body, and for which request. */
export interface BulkReplyStart {
  seq: number;
  /** Bytes of msgpack before the data. */
  prefixBytes: number;
  dataBytes: number;
}

/** How many body bytes a receiver needs to recognize a bulk reply (the prefix is about 30). */
export const BULK_PREFIX_PEEK_BYTES = 64;

/**
 * Recognizes a frame body that is exactly `{ seq, reply: { data: <bin32> } }` with the data
 * running to the end of the body: the shape replyWithBytes produces. Anything else (an error, a
 * different shape, a short peek) is undefined, and the frame is decoded the ordinary way.
 */
export function matchBulkReply(peek: Buffer, bodyBytes: number): BulkReplyStart | undefined {
  const reader = new PrefixReader(peek);
  if (reader.mapSize() !== 2 || reader.string() !== 'seq') return undefined;
  const seq = reader.unsigned();
  if (seq === undefined || reader.string() !== 'reply' || reader.mapSize() !== 1 || reader.string() !== 'data')
    return undefined;
  const dataBytes = reader.bin32Length();
  if (dataBytes === undefined || reader.offset + dataBytes !== bodyBytes) return undefined;
  return { seq, prefixBytes: reader.offset, dataBytes };
}

/** Just enough msgpack to read the prefix above; every method returns undefined on anything else. */
class PrefixReader {
  offset = 0;

  constructor(private readonly bytes: Buffer) {}

  mapSize(): number | undefined {
    const first = this.byte();
    if (first === undefined) return undefined;
    if ((first & 0xf0) === FIXMAP) return first & 0x0f;
    if (first === MAP16 && this.has(2)) return this.advance(2, this.bytes.readUInt16BE(this.offset));
    return undefined;
  }

  string(): string | undefined {
    const first = this.byte();
    if (first === undefined || (first & 0xe0) !== 0xa0) return undefined;
    const length = first & 0x1f;
    if (!this.has(length)) return undefined;
    return this.advance(length, this.bytes.toString('latin1', this.offset, this.offset + length));
  }

  unsigned(): number | undefined {
    const first = this.byte();
    if (first === undefined) return undefined;
    if (first < 0x80) return first;
    if (first === 0xcc && this.has(1)) return this.advance(1, this.bytes.readUInt8(this.offset));
    if (first === 0xcd && this.has(2)) return this.advance(2, this.bytes.readUInt16BE(this.offset));
    if (first === 0xce && this.has(4)) return this.advance(4, this.bytes.readUInt32BE(this.offset));
    return undefined;
  }

  bin32Length(): number | undefined {
    if (this.byte() !== BIN32 || !this.has(4)) return undefined;
    return this.advance(4, this.bytes.readUInt32BE(this.offset));
  }

  private byte(): number | undefined {
    return this.offset < this.bytes.length ? this.bytes[this.offset++] : undefined;
  }

  private has(bytes: number): boolean {
    return this.offset + bytes <= this.bytes.length;
  }

  private advance<T>(bytes: number, value: T): T {
    this.offset += bytes;
    return value;
  }
}

/**
 * Splits reading `blobs` into readBlobs requests of at most `chunkBytes` each: small blobs
 * share a request, large ones are cut into pieces. Empty blobs need no request.
 */
export function planReads(blobs: ReadonlyArray<{ id: string; size: number }>, chunkBytes: number): ByteRange[][] {
  if (!(chunkBytes > 0)) throw new TrellisError('InvalidArgument', `chunk size must be positive, got ${chunkBytes}`);
  const requests: ByteRange[][] = [];
  let current: ByteRange[] = [];
  let currentBytes = 0;
  for (const { id, size } of blobs) {
    for (let offset = 0; offset < size;) {
      if (currentBytes === chunkBytes) {
        requests.push(current);
        current = [];
        currentBytes = 0;
      }
      const length = Math.min(size - offset, chunkBytes - currentBytes);
      current.push({ id, offset, length });
      currentBytes += length;
      offset += length;
    }
  }
  if (current.length > 0) requests.push(current);
  return requests;
}
