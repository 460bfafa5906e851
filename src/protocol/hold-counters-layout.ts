/**
 * A local client's hold-counter segment (docs/read-index.md, "Pinned views" and "Use"), which
 * the client writes and the daemon reads: 32-bit words, `slots` hold counters, then `slots` use
 * counts, then the written-chunk map. Both ends import this file.
 *
 * The written-chunk map says which chunks of CHUNK_WORDS words of the counters and use counts
 * the client has ever written: a marker word (WRITTEN_MAP_MAGIC, stored by a client that keeps
 * the map, at connect), then one bit per chunk. A departing client's segment is read by the
 * daemon; with the map it reads only the chunks written (a few, whatever the slot count),
 * without it all of them. A client that lies in its map only hides its own holds and uses, which
 * count for nothing but the spill order once it is gone.
 */

/** Words per chunk of the map: 16 KiB, as the daemon reads them. */
export const CHUNK_WORDS = 4096;
const CHUNK_SHIFT = 12;

/** 'WCHK' as a little-endian word: the client keeps the written-chunk map. */
export const WRITTEN_MAP_MAGIC = 0x4b484357;

/** Words of the written-chunk map for `slots` slots: the marker, then a bit per chunk. */
export function writtenMapWords(slots: number): number {
  return 1 + Math.ceil(Math.ceil((2 * slots) / CHUNK_WORDS) / 32);
}

/** Words of the whole segment for `slots` slots. */
export function holdCounterWords(slots: number): number {
  return 2 * slots + writtenMapWords(slots);
}

/** The chunk a word of the counters or use counts is in. */
export function chunkOf(word: number): number {
  return word >>> CHUNK_SHIFT;
}
