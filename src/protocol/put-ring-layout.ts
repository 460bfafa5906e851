/**
 * The put ring: a client's small bare puts written into shared memory and resolved at once,
 * registered by the daemon when it drains the ring. Both ends import this file, so the layout is
 * written down once; docs/put-ring.md says why it is correct.
 *
 * A ring is a block of the daemon's pool granted to one local client (its segment's fd goes over
 * the fd channel like any blob's), read as 32-bit words through Atomics on an Int32Array: a
 * header of HEADER_WORDS words, then `capacity` records of RECORD_WORDS words. The bytes of the
 * objects are in other pool blocks, the client's arenas, each granted with a block of ids.
 */

/** 'TPRG' as a little-endian word: a block that does not start with it is not a ring. */
export const PUT_RING_MAGIC = 0x47525054;
export const PUT_RING_LAYOUT_VERSION = 1;

/** Objects above this size are put through the socket, as before: the read index's limit. */
export const PUT_RING_MAX_BYTES = 4096;

/** Arena blocks are carved per object in steps of this (the pool's block alignment). */
export const PUT_RING_ALIGNMENT = 64;

/** Header words. */
export const HEADER_WORDS = 16;
export const H_MAGIC = 0;
export const H_VERSION = 1;
/** Records the ring holds (a power of two). */
export const H_CAPACITY = 2;
/** Records published, written by the client only (wraps at 2^32; differences are taken mod 2^32). */
export const H_HEAD = 3;
/** Records drained, written by the daemon only. */
export const H_TAIL = 4;
/** 1 while the daemon is idle and wants a doorbell for the next record; the client swaps it to 0. */
export const H_ARMED = 5;

/** Record words (segment, offset and size are unsigned 32-bit: a segment is under 4 GiB). */
export const RECORD_WORDS = 8;
export const R_KIND = 0;
/** The id's 48-bit sequence (protocol/ids.ts), high 16 bits and low 32 bits. */
export const R_SEQ_HIGH = 1;
export const R_SEQ_LOW = 2;
export const R_SEGMENT = 3;
export const R_OFFSET = 4;
export const R_SIZE = 5;
/** RECORD_TENSOR only: the element type, an index into PUT_RING_TENSOR_DTYPES. */
export const R_DTYPE = 6;

/** R_KIND: bare bytes (a trellis::Blob), or a small Value's msgpack bytes (a trellis::Value). */
export const RECORD_BLOB = 1;
export const RECORD_VALUE = 2;
/**
 * A small createBlob: an unsealed blob of this client at the arena's next place, which it fills
 * in place; RECORD_SEAL (only the id's words set) seals it later, keeping a reference for the
 * writer as seal() does. Any other request of the client also sees both.
 */
export const RECORD_CREATE = 3;
export const RECORD_SEAL = 4;
/**
 * A small TypedArray: its bytes become a trellis::Blob under the record's id, and the next id of
 * the block names the trellis::Tensor<dtype> over it (fields dtype and shape [length]), as the
 * socket's createMetadata with the bytes inline stores it. R_DTYPE says which dtype.
 */
export const RECORD_TENSOR = 5;

/** R_DTYPE's codes: a tensor's dtype (types/tensor.ts) and the bytes of one element. */
export const PUT_RING_TENSOR_DTYPES: ReadonlyArray<{ readonly dtype: string; readonly width: number }> = [
  { dtype: 'int8', width: 1 },
  { dtype: 'uint8clamped', width: 1 },
  { dtype: 'int16', width: 2 },
  { dtype: 'uint16', width: 2 },
  { dtype: 'int32', width: 4 },
  { dtype: 'uint32', width: 4 },
  { dtype: 'float32', width: 4 },
  { dtype: 'float64', width: 8 },
  { dtype: 'int64', width: 8 },
  { dtype: 'uint64', width: 8 },
];

/** The bytes an object of `size` bytes takes in an arena (the pool's allocation of it). */
export function arenaBytesFor(size: number): number {
  return Math.ceil(Math.max(size, 1) / PUT_RING_ALIGNMENT) * PUT_RING_ALIGNMENT;
}

export function ringBytes(capacity: number): number {
  return (HEADER_WORDS + capacity * RECORD_WORDS) * 4;
}
