/**
 * Reading typed values straight from bytes, without making a string per field. Each type has a
 * fast reader for the common spelling (called per field by the column builders) and a general
 * reader for everything else that is still valid (surrounding spaces, long numbers, NaN), which
 * may make a string: it runs only when the fast one gives up.
 */

import { exactDecimal } from './exact-decimal';

const ZERO = 0x30;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const SPACE = 0x20;
const TAB = 0x09;
const LOWER_E = 0x65;
/** OR-ing an ASCII letter with this makes it lower case. */
const LOWER_CASE_BIT = 0x20;

/** Up to 15 decimal digits always fit a double's 53-bit mantissa exactly. */
const MAX_EXACT_DIGITS = 15;
/** Digits after the first 15 that exact-decimal.ts takes (19 in all stay below 2^64). */
const MAX_LOW_DIGITS = 4;
/** 10^0 .. 10^22 are exact doubles: Clinger's fast path multiplies or divides by one of them. */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const FLOAT_SYNTAX = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const FLOAT_SPECIAL: Record<string, number> = { nan: NaN, inf: Infinity, infinity: Infinity };

/** The range without leading and trailing spaces and tabs, as [start, end]. */
export function trimRange(bytes: Uint8Array, start: number, end: number): [number, number] {
  while (start < end && (bytes[start] === SPACE || bytes[start] === TAB)) start++;
  while (end > start && (bytes[end - 1] === SPACE || bytes[end - 1] === TAB)) end--;
  return [start, end];
}

/** An optionally signed integer of at most 15 digits, or NaN. */
export function readSimpleInt(bytes: Uint8Array, start: number, end: number): number {
  let i = start;
  const first = bytes[i];
  const negative = first === MINUS;
  if (negative || first === PLUS) i++;
  const digitsStart = i;
  if (end - digitsStart > MAX_EXACT_DIGITS || digitsStart === end) return NaN;
  let value = 0;
  for (; i < end; i++) {
    const digit = bytes[i] - ZERO;
    if (digit >>> 0 > 9) return NaN;
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

/** Any integer in int64's range, spaces around it allowed: a number when safe, else a bigint. */
export function readInt64Text(bytes: Uint8Array, start: number, end: number): number | bigint | undefined {
  [start, end] = trimRange(bytes, start, end);
  const simple = readSimpleInt(bytes, start, end);
  if (!Number.isNaN(simple)) return simple;
  const text = latin1(bytes, start, end);
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const value = BigInt(text);
  if (value < INT64_MIN || value > INT64_MAX) return undefined;
  return Number.isSafeInteger(Number(value)) ? Number(value) : value;
}

/**
 * A decimal such as -12.5e3 with at most 19 significant digits and a small exponent, or NaN.
 * Up to 15 digits, the number is an exact integer times or divided by an exact power of ten, so
 * one multiplication or division gives the correctly rounded double (Clinger's fast path); 16
 * to 19 digits go through exact-decimal.ts, which may still answer NaN for a hard case.
 */
export function readSimpleFloat(bytes: Uint8Array, start: number, end: number): number {
  let i = start;
  const first = bytes[i];
  const negative = first === MINUS;
  if (negative || first === PLUS) i++;
  // The first 15 significant digits go to `mantissa`, any after them to `low`.
  let mantissa = 0;
  let low = 0;
  let lowDigits = 0;
  let significant = 0;
  let digits = 0;
  let scale = 0;
  // Digits, with at most one dot among them; each digit after the dot scales the number down.
  let afterDot = false;
  for (; i < end; i++) {
    const digit = bytes[i] - ZERO;
    if (digit >>> 0 > 9) {
      if (bytes[i] !== DOT || afterDot) break;
      afterDot = true;
      continue;
    }
    digits++;
    if (afterDot) scale--;
    if (significant < MAX_EXACT_DIGITS) {
      if (mantissa !== 0 || digit !== 0) significant++;
      mantissa = mantissa * 10 + digit;
    } else {
      low = low * 10 + digit;
      lowDigits++;
    }
  }
  if (digits === 0 || lowDigits > MAX_LOW_DIGITS) return NaN;
  if (i < end && (bytes[i] | LOWER_CASE_BIT) === LOWER_E) {
    i++;
    const sign = bytes[i];
    const negativeExponent = sign === MINUS;
    if (negativeExponent || sign === PLUS) i++;
    const exponentStart = i;
    let exponent = 0;
    for (let digit: number; i < end && (digit = bytes[i] - ZERO) >>> 0 <= 9 && i - exponentStart < 4; i++)
      exponent = exponent * 10 + digit;
    if (i === exponentStart) return NaN;
    scale += negativeExponent ? -exponent : exponent;
  }
  if (i !== end || scale > 22 || scale < -22) return NaN;
  let value: number;
  if (lowDigits > 0) value = exactDecimal(mantissa, low, lowDigits, scale);
  else if (scale === 0) value = mantissa;
  else if (scale > 0) value = mantissa * EXACT_POWERS_OF_TEN[scale];
  else value = mantissa / EXACT_POWERS_OF_TEN[-scale];
  return negative ? -value : value;
}

/** Any decimal float, NaN, inf or infinity (any case, signed), spaces around it allowed. */
export function readFloatText(bytes: Uint8Array, start: number, end: number): number | undefined {
  [start, end] = trimRange(bytes, start, end);
  const simple = readSimpleFloat(bytes, start, end);
  if (!Number.isNaN(simple)) return simple;
  const text = latin1(bytes, start, end);
  // A valid decimal string converts exactly (correctly rounded) through Number().
  if (FLOAT_SYNTAX.test(text)) return Number(text);
  const unsigned = text.replace(/^[+-]/, '').toLowerCase();
  if (!Object.prototype.hasOwnProperty.call(FLOAT_SPECIAL, unsigned)) return undefined;
  return text.startsWith('-') ? -FLOAT_SPECIAL[unsigned] : FLOAT_SPECIAL[unsigned];
}

/** true / false in any case, spaces around allowed: 1, 0, or -1 for neither. */
export function readBool(bytes: Uint8Array, start: number, end: number): number {
  [start, end] = trimRange(bytes, start, end);
  if (end - start === 4 && matchesLowerCase(bytes, start, 'true')) return 1;
  if (end - start === 5 && matchesLowerCase(bytes, start, 'false')) return 0;
  return -1;
}

function matchesLowerCase(bytes: Uint8Array, start: number, word: string): boolean {
  for (let i = 0; i < word.length; i++) if ((bytes[start + i] | LOWER_CASE_BIT) !== word.charCodeAt(i)) return false;
  return true;
}

const DATE_LENGTH = 10;
const MAX_YEAR = 9999;
/**
 * Days since the epoch of the first of each month, years 0 to 9999 and one month more: a date
 * is then one lookup plus its day, and the month's length is the difference of two entries.
 * Built on first use (about a millisecond, 480 KB).
 */
let monthStarts: Int32Array | undefined;

function buildMonthStarts(): Int32Array {
  const table = new Int32Array((MAX_YEAR + 1) * 12 + 1);
  for (let i = 0; i < table.length; i++) table[i] = daysFromCivil(Math.floor(i / 12), (i % 12) + 1, 1);
  return table;
}

/** An ISO date YYYY-MM-DD as days since 1970-01-01 (arrow's DateDay), or NaN. */
export function readDate(bytes: Uint8Array, start: number, end: number): number {
  if (end - start !== DATE_LENGTH) {
    [start, end] = trimRange(bytes, start, end);
    if (end - start !== DATE_LENGTH) return NaN;
  }
  if (bytes[start + 4] !== MINUS || bytes[start + 7] !== MINUS) return NaN;
  const year = readDigits(bytes, start, 4);
  const month = readDigits(bytes, start + 5, 2);
  const day = readDigits(bytes, start + 8, 2);
  if (!(month >= 1 && month <= 12 && day >= 1)) return NaN; // also NaN digits
  const table = (monthStarts ??= buildMonthStarts());
  const index = year * 12 + month - 1;
  const first = table[index];
  return day <= table[index + 1] - first ? first + day - 1 : NaN;
}

/** A fixed number of digits, or NaN. */
function readDigits(bytes: Uint8Array, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const digit = bytes[i] - ZERO;
    if (digit >>> 0 > 9) return NaN;
    value = value * 10 + digit;
  }
  return value;
}

/** Howard Hinnant's days_from_civil: proleptic Gregorian date to days since 1970-01-01. */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}
