/**
 * The read index: a shared-memory hash table from object id to where a small sealed object's
 * bytes are, written only by the daemon and read lock-free by its local clients, so that a get
 * of a small object needs no round trip. Both ends import this file, so the layout is written
 * down once; docs/read-index.md says why it is correct.
 *
 * The segment is an array of 32-bit words (little-endian; every access goes through Atomics on
 * an Int32Array): a header of HEADER_WORDS words, then `slots` slots of SLOT_WORDS words, then an
 * arena that holds the inline bytes of small Values (whose bytes are in no blob).
 */
import { Packr } from 'msgpackr';

/** The grant tag of the index's fd: segment ids start at 1, so 0 is never a real segment. */
export const READ_INDEX_SEGMENT = 0;

/**
 * The grant tag of a client's hold counters (docs/read-index.md, "Pinned views"): far above any
 * pool segment id (they count up from 1 and are never reused), and exact as a double.
 */
export const READ_INDEX_HOLDS_SEGMENT = 2 ** 52;

/** 'TRIX' as a little-endian word: a mapping that does not start with it is not an index. */
export const READ_INDEX_MAGIC = 0x58495254;
export const READ_INDEX_LAYOUT_VERSION = 1;

/**
 * Values above this size are not indexed: a get copies a Value's bytes out of the arena, and the
 * arena is small. Blobs are handed out as pinned views (no copy), so they are indexed at any size
 * up to READ_INDEX_MAX_BLOB_END (docs/read-index.md).
 */
export const READ_INDEX_MAX_BYTES = 4096;

/**
 * A blob is indexed only when its offset + size fit a signed 32-bit slot word: clients of the
 * first layout read S_OFFSET and S_SIZE as signed words, so larger ones go through the daemon.
 */
export const READ_INDEX_MAX_BLOB_END = 0x7fffffff;

/**
 * openReadIndex with `segments` grants at most this many pool segments' fds (the first, which the
 * pool fills first): each stays open in the client, and one more is one more fd message at connect.
 * Segments beyond them, and segments made later, are granted with the first get that needs them.
 */
export const READ_INDEX_CONNECT_SEGMENTS = 64;

/** Header words. */
export const HEADER_WORDS = 16;
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_SLOTS = 2;
/** Byte offset of the value arena. */
export const H_ARENA_OFFSET = 3;
export const H_ARENA_BYTES = 4;

/** Slot words. `seq` is a seqlock: odd while the daemon writes the slot, bumped by 2 per write. */
export const SLOT_WORDS = 8;
export const S_SEQ = 0;
export const S_KEY_HIGH = 1;
export const S_KEY_LOW = 2;
export const S_STATE = 3;
export const S_KIND = 4;
export const S_SEGMENT = 5;
export const S_OFFSET = 6;
export const S_SIZE = 7;

/**
 * S_STATE: never used (ends a probe), holds an object, or held one (a probe goes on past it).
 * SLOT_WAITING is a removed slot whose bytes a client still holds a view of: the daemon frees
 * them (and reuses the slot) once every client's counter for the slot is 0, and a client that
 * drops its hold on a waiting slot tells the daemon (release's indexSlots).
 */
export const SLOT_EMPTY = 0;
export const SLOT_LIVE = 1;
export const SLOT_REMOVED = 2;
export const SLOT_WAITING = 3;

/** S_KIND: what the bytes are. A value's bytes lie in the arena (S_SEGMENT is READ_INDEX_SEGMENT). */
export const KIND_BLOB = 1;
export const KIND_VALUE = 2;
/**
 * A metadata object whose members are all blobs (a DataFrame): its typename, fields and member
 * ids, packed as an IndexedObjectRecord in the arena like a Value's bytes. A client pins each
 * member blob through the member's own slot. Clients that predate it see an unknown kind: a miss.
 */
export const KIND_OBJECT = 3;
/**
 * A frozen ShareableList: a sealed blob of typename trellis::ShareableList, pinned and viewed as a
 * blob (getBlob takes it so), which get resolves as a list. Clients that predate it see an unknown
 * kind: a miss (their get copies the bytes out before it sees the kind; their getBlob does not).
 */
export const KIND_LIST = 4;

/** Kinds whose bytes are a blob's in a pool segment, pinned by the hold counters (not in the arena). */
export function isBlobKind(kind: number): boolean {
  return kind === KIND_BLOB || kind === KIND_LIST;
}

/** What a KIND_OBJECT entry's arena bytes unpack to (JSON, or msgpack as the protocol packs; see packIndexedObject). */
export interface IndexedObjectRecord {
  typename: string;
  nbytes: number;
  fields: Record<string, unknown>;
  /** member key -> blob id */
  members: Record<string, string>;
}

const recordPackr = new Packr({ useRecords: false, mapsAsObjects: true });

/** The first byte of a record packed as JSON ('{'); a msgpack record, a map, never starts so. */
const JSON_RECORD_START = 0x7b;

/**
 * A KIND_OBJECT entry's arena bytes (the daemon writes them): JSON (UTF-8) when the record is
 * plain JSON and fits in READ_INDEX_MAX_BYTES, else msgpack. JSON.parse is native: a fresh
 * process's first unpack of a DataFrame's record took msgpackr ~0.1 ms more (its decoder's first
 * run). A client that predates JSON records cannot unpack one (msgpack reads the number 123,
 * then throws at the bytes left over): it asks the daemon. Throws what msgpackr throws.
 */
export function packIndexedObject(record: IndexedObjectRecord): Uint8Array {
  if (isPlainJson(record)) {
    const json = Buffer.from(JSON.stringify(record));
    if (json.byteLength <= READ_INDEX_MAX_BYTES) return json;
  }
  return recordPackr.pack(record);
}

/**
 * An entry's record as unpacked, unchecked (a client checks it), from JSON or msgpack (an older
 * daemon's). Throws on bytes neither can read.
 */
export function unpackIndexedObject(bytes: Uint8Array): IndexedObjectRecord {
  if (bytes[0] === JSON_RECORD_START)
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString()) as IndexedObjectRecord;
  return recordPackr.unpack(bytes) as IndexedObjectRecord;
}

/**
 * Whether JSON gives `value` back as msgpack would: strings, booleans, null, finite numbers but
 * -0, arrays and plain objects of those. Anything else (bytes, bigints, undefined, NaN, Maps,
 * a "__proto__" key, which JSON.parse makes an own key) keeps the record in msgpack.
 */
function isPlainJson(value: unknown): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0);
  if (typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.every(isPlainJson);
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return false;
  for (const key of Object.keys(value)) {
    if (key === '__proto__' || !isPlainJson((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

/** Probes give up after this many slots: a miss then costs a round trip, never a long scan. */
export const MAX_PROBE = 32;

/** An object id's 64 bits ('o' + 16 hex digits) as two signed 32-bit words: the index's key. */
export interface IndexKey {
  high: number;
  low: number;
}

/** 'o' and 16 hex digits (protocol/ids.ts). A local constant: an imported one is a property load per use. */
const ID_LENGTH = 17;
const LOWERCASE_O = 111;
/** Each ASCII code's value as a lowercase hex digit, -1 for any other character. */
const HEX_DIGITS = new Int8Array(128).fill(-1);
for (let digit = 0; digit < 16; digit++) HEX_DIGITS['0123456789abcdef'.charCodeAt(digit)] = digit;

/**
 * The key of an object id, or undefined for any string that is not one ('o' and 16 lowercase hex
 * digits; a name, say): the check and both words in one call, with no substring (the daemon keys
 * every small object it registers, a client every get from the index).
 *
 * One call per lookup, with short loops, on purpose: V8 queues a function for its baseline
 * compiler once a call or two has run about 1 KB of its bytecode, and compiles the whole queue
 * (~4 KB of functions) at whichever call fills it. An id check and two 8-digit loops of their own
 * per lookup queued ~1.7 KB in a fresh reader's first getBlob, which filled the queue there (a
 * batch of 7-9 functions, ~0.15 ms and two page faults) once connect() had left it 2.5 KB full.
 */
export function indexKey(id: string): IndexKey | undefined {
  if (typeof id !== 'string' || id.length !== ID_LENGTH || id.charCodeAt(0) !== LOWERCASE_O) return undefined;
  // Both words in one loop of 8 over locals: each pass of a loop spends the function's budget
  // by the loop's bytecode, and a module constant read in the loop is a context load and a check.
  const digits = HEX_DIGITS;
  let high = 0;
  let low = 0;
  // 'o', then the high word's 8 digits, then the low word's.
  for (let i = 1; i < 9; i++) {
    const highDigit = digits[id.charCodeAt(i)];
    const lowDigit = digits[id.charCodeAt(i + 8)];
    // -1, or undefined for a code past the table: not an id.
    if (!(highDigit >= 0 && lowDigit >= 0)) return undefined;
    high = (high << 4) | highDigit;
    low = (low << 4) | lowDigit;
  }
  return { high, low };
}

/**
 * The first slot to probe. Ids are a clock-seeded counter (protocol/ids.ts), so their low bits
 * are dense: mixed with a multiply so that neighbouring ids spread over the table.
 */
export function firstSlot(high: number, low: number, slots: number): number {
  let h = Math.imul(low ^ (high >>> 7), 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) & (slots - 1);
}
