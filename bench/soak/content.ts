/**
 * Object bytes that check themselves: any client can verify any object it reads without asking
 * the writer. The first 8 bytes hold the seed and the size; the rest is a 64 KiB block made from
 * the seed, repeated, with each later 64 KiB chunk starting with its own index, so that a chunk
 * served from the wrong offset (or another object) fails as surely as a flipped byte. Filling
 * and checking are copies and memcmps, cheap enough for 64 MiB objects.
 */
import { createHash } from 'node:crypto';

const CHUNK_BYTES = 64 * 1024;
export const HEADER_BYTES = 8;

/** xorshift32: the same seed gives the same block in every process. */
function patternBlock(seed: number): Buffer {
  const words = new Uint32Array(CHUNK_BYTES / 4);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer);
}

/** Fills `target` (at least HEADER_BYTES long) with the content for `seed`. */
export function fillContent(target: Uint8Array, seed: number): void {
  const block = patternBlock(seed);
  const out = Buffer.from(target.buffer, target.byteOffset, target.byteLength);
  for (let offset = 0; offset < out.length; offset += CHUNK_BYTES) {
    block.copy(out, offset, 0, Math.min(CHUNK_BYTES, out.length - offset));
    if (offset > 0 && out.length - offset >= 4) out.writeUInt32LE(offset / CHUNK_BYTES, offset);
  }
  out.writeUInt32LE(seed >>> 0, 0);
  out.writeUInt32LE(out.length >>> 0, 4);
}

export function makeContent(size: number, seed: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  fillContent(buffer, seed);
  return buffer;
}

/** Why `bytes` is not valid content, or undefined when it is. */
export function checkContent(bytes: Uint8Array): string | undefined {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.length < HEADER_BYTES) return `${view.length} bytes is shorter than the header`;
  const seed = view.readUInt32LE(0);
  if (view.readUInt32LE(4) !== view.length >>> 0) {
    return `header says ${view.readUInt32LE(4)} bytes, object has ${view.length}`;
  }
  const block = patternBlock(seed);
  for (let offset = 0; offset < view.length; offset += CHUNK_BYTES) {
    const end = Math.min(CHUNK_BYTES, view.length - offset);
    const skip = offset === 0 ? HEADER_BYTES : Math.min(4, end);
    if (offset > 0 && end >= 4 && view.readUInt32LE(offset) !== offset / CHUNK_BYTES) {
      return `chunk at ${offset} carries index ${view.readUInt32LE(offset)}`;
    }
    if (block.compare(view, offset + skip, offset + end, skip, end) !== 0) {
      return `bytes differ in the 64 KiB chunk at offset ${offset} (seed ${seed})`;
    }
  }
  return undefined;
}

/** The checksum recorded for named objects: sha1 is fast and collisions do not matter here. */
export function checksum(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex');
}
