/**
 * Metadata fields as JSON, exactly: fields hold what msgpack carries (bytes, bigints, dates,
 * NaN, -0, undefined), which plain JSON cannot, so those become one-key tagged objects, and a
 * key of the data that starts with `$` gets one more `$`, so that no data is read as a tag.
 * `canonicalJson` is the one text the topHash is computed over: object keys sorted by UTF-16
 * code units, no whitespace, strings and numbers as JSON.stringify writes them (as RFC 8785).
 * docs/archive-format.md describes both; changing either changes every topHash.
 */
import { TrellisError } from '../../errors';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const TAGS = ['$bytes', '$bigint', '$date', '$number', '$undefined'] as const;

/** Errors: InvalidArgument for a value fields cannot hold (a Map, a class instance, ...). */
export function encodeField(value: unknown, where: string): Json {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (value === undefined) return { $undefined: true };
  if (typeof value === 'number') {
    if (Number.isFinite(value) && !Object.is(value, -0)) return value;
    return { $number: Object.is(value, -0) ? '-0' : String(value) };
  }
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Uint8Array)
    return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value instanceof Date) return { $date: encodeField(value.getTime(), where) };
  if (Array.isArray(value)) return value.map((item, i) => encodeField(item, `${where}[${i}]`));
  const prototype = typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
  if (prototype === Object.prototype || prototype === null) {
    const out: { [key: string]: Json } = {};
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      out[key.startsWith('$') ? `$${key}` : key] = encodeField(item, `${where}.${key}`);
    }
    return out;
  }
  const kind = typeof value === 'object' ? ((value as object).constructor?.name ?? 'object') : typeof value;
  throw new TrellisError('InvalidArgument', `field ${where} holds a ${kind}, which an archive cannot hold`);
}

/** The inverse of encodeField. Errors: ParseError naming `where`. */
export function decodeField(json: unknown, where: string): unknown {
  if (json === null || typeof json === 'boolean' || typeof json === 'string' || typeof json === 'number') return json;
  if (Array.isArray(json)) return json.map((item, i) => decodeField(item, `${where}[${i}]`));
  if (typeof json !== 'object') throw new TrellisError('ParseError', `${where}: not a JSON value`);
  const entries = Object.entries(json as Record<string, unknown>);
  if (entries.length === 1 && (TAGS as readonly string[]).includes(entries[0][0]))
    return decodeTag(entries[0][0], entries[0][1], where);
  const out: Record<string, unknown> = {};
  for (const [key, item] of entries) {
    if (key.startsWith('$') && !key.startsWith('$$'))
      throw new TrellisError('ParseError', `${where}: unknown tag ${JSON.stringify(key)}`);
    const plainKey = key.startsWith('$') ? key.slice(1) : key;
    out[plainKey] = decodeField(item, `${where}.${plainKey}`);
  }
  return out;
}

function decodeTag(tag: string, value: unknown, where: string): unknown {
  const bad = (): never => {
    throw new TrellisError('ParseError', `${where}: bad ${tag} value ${JSON.stringify(value)}`);
  };
  switch (tag) {
    case '$bytes':
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return bad();
      return Buffer.from(value, 'base64');
    case '$bigint':
      if (typeof value !== 'string' || !/^-?\d+$/.test(value)) return bad();
      return BigInt(value);
    case '$date': {
      const time = decodeField(value, where);
      if (typeof time !== 'number') return bad();
      return new Date(time);
    }
    case '$number':
      if (value === '-0') return -0;
      if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return Number(value);
      return bad();
    default:
      if (value !== true) return bad();
      return undefined;
  }
}

/** JSON with object keys sorted, no whitespace: the same text for the same value, anywhere. */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`;
}
