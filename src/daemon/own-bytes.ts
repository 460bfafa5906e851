/**
 * Bytes the daemon keeps for as long as an object lives (a small value's msgpack in its `data`
 * field, any other field with bytes) must be their own. msgpack decodes bytes as views of the
 * buffer they arrived in: a socket chunk of up to 64 KiB, or a frame gathered from several, or an
 * etcd response. One such view keeps that whole buffer alive, so a daemon that kept a 100-byte
 * value from every 48 KiB frame held the frames, not the values.
 *
 * The views of one object are copied into one allocation of their total size: they live and die
 * with the object, together. A copy of a small value costs far less than the request it came in.
 *
 * Strings too: msgpackr decodes the strings of a message of 140 B or more (with its native
 * extractor) as one string, and hands out slices of it; a slice of 13 characters or more keeps
 * that whole string alive (a typename kept 96-byte request strings, one per object). ownString
 * gives one of its own.
 */

interface Found {
  holder: Record<string, unknown> | unknown[];
  key: string | number;
  bytes: Uint8Array;
}

/**
 * Replaces, in place, every Uint8Array in `tree` (plain objects and arrays, as msgpack decodes
 * them) that is a view of a larger buffer with a copy of its own, and returns `tree`.
 */
export function ownBytes<T extends object>(tree: T): T {
  const found: Found[] = [];
  const total = collectViews(tree, found, 0);
  if (found.length === 0) return tree;
  // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared pool (which would keep
  // 8 KiB alive for every small copy, the same problem smaller).
  const copy = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const { holder, key, bytes } of found) {
    copy.set(bytes, at);
    const own = Buffer.isBuffer(bytes)
      ? copy.subarray(at, at + bytes.byteLength)
      : new Uint8Array(copy.buffer, copy.byteOffset + at, bytes.byteLength);
    (holder as Record<string | number, unknown>)[key] = own;
    at += bytes.byteLength;
  }
  return tree;
}

/** Adds the views under `node` to `found`; returns `total` plus their bytes. */
function collectViews(node: object, found: Found[], total: number): number {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) total = visit(node, i, node[i], found, total);
  } else {
    const record = node as Record<string, unknown>;
    for (const key in record) total = visit(record, key, record[key], found, total);
  }
  return total;
}

function visit(
  holder: Record<string, unknown> | unknown[],
  key: string | number,
  value: unknown,
  found: Found[],
  total: number,
): number {
  if (typeof value === 'string') {
    if (value.length >= SLICE_MIN_LENGTH) holder[key as never] = ownString(value) as never;
    return total;
  }
  if (typeof value !== 'object' || value === null) return total;
  if (value instanceof Uint8Array) {
    if (value.byteLength === value.buffer.byteLength) return total;
    found.push({ holder, key, bytes: value });
    return total + value.byteLength;
  }
  // Only what msgpack makes (plain objects and arrays); anything else is left as it is.
  if (Array.isArray(value) || Object.getPrototypeOf(value) === Object.prototype) {
    return collectViews(value, found, total);
  }
  return total;
}

/** V8 copies shorter substrings; from this length on, a substring is a slice of its parent. */
const SLICE_MIN_LENGTH = 13;

/**
 * The same characters, in a string of their own: V8's internalized copy (a property key's),
 * which is shared by every equal string kept so (typenames: one per kind, not one per object)
 * and dropped by the collector when none is left.
 */
export function ownString(text: string): string {
  if (text.length < SLICE_MIN_LENGTH) return text;
  for (const key in { [text]: 0 }) return key;
  return text;
}

/**
 * `bytes` when it is the whole of its buffer, otherwise a copy of its own: for one value kept
 * long (an etcd value in a mirror), which would keep the response, msgpackr's working buffer or
 * a slice of Node's shared pool alive.
 */
export function ownBuffer(bytes: Buffer): Buffer {
  if (bytes.byteLength === bytes.buffer.byteLength) return bytes;
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength);
  copy.set(bytes);
  return copy;
}
