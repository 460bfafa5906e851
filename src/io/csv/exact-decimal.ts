/**
 * Correctly rounded decimal-to-double conversion for 16 to 19 significant digits, the common
 * output of "print every digit" writers (JavaScript's String(x), pandas), without making a
 * string for Number(). Up to 15 digits, Clinger's fast path in values.ts is already exact.
 *
 * The decimal M * 10^scale (M < 10^19, |scale| <= 22) is computed in double-double arithmetic
 * (Dekker's error-free products and sums), which carries about 104 bits, so the result is
 * within 2^-88 of the true value in relative terms. That is enough to round correctly unless
 * the true value lies within that distance of a halfway point between two doubles; guard()
 * checks this and returns NaN in that rare case, and the caller falls back to Number().
 */

/** 2^27 + 1: Dekker's splitter for 53-bit doubles. */
const SPLITTER = 134217729;
/** Relative error bound of the double-double result, with margin (see the analysis above). */
const RELATIVE_ERROR = 2 ** -80;
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

/** High part of a in Dekker's split. */
function splitHigh(a: number): number {
  const c = SPLITTER * a;
  return c - (c - a);
}

/** The rounding error of a * b (so a * b == fl(a * b) + twoProductError(a, b) exactly). */
function twoProductError(a: number, b: number, product: number): number {
  const ah = splitHigh(a);
  const al = a - ah;
  const bh = splitHigh(b);
  const bl = b - bh;
  return ah * bh - product + ah * bl + al * bh + al * bl;
}

/**
 * (high * 10^lowDigits + low) * 10^scale, correctly rounded; NaN when too close to call.
 * high has exactly 15 significant digits, low has lowDigits (1 to 4) digits, |scale| <= 22.
 */
export function exactDecimal(high: number, low: number, lowDigits: number, scale: number): number {
  // M = high * 10^lowDigits + low, held exactly as mh + ml (all terms are integers below 2^64).
  const power = EXACT_POWERS_OF_TEN[lowDigits];
  const product = high * power;
  const productError = twoProductError(high, power, product);
  const mh = product + low;
  const sumError = low - (mh - product); // exact: |low| is far below |product|
  const ml = sumError + productError; // integers of at most 2^11: exact

  let qh: number;
  let ql: number;
  if (scale >= 0) {
    const p = EXACT_POWERS_OF_TEN[scale];
    const ph = mh * p;
    const pl = twoProductError(mh, p, ph) + ml * p;
    qh = ph + pl;
    ql = pl - (qh - ph);
  } else {
    const p = EXACT_POWERS_OF_TEN[-scale];
    const q1 = mh / p;
    const a = q1 * p;
    const b = twoProductError(q1, p, a);
    const remainder = mh - a - b + ml; // mh - a is exact (Sterbenz)
    const q2 = remainder / p;
    qh = q1 + q2;
    ql = q2 - (qh - q1);
  }
  return guard(qh, ql);
}

/** qh if every value within the error bound of qh + ql rounds to qh, else NaN. */
function guard(qh: number, ql: number): number {
  const slack = Math.abs(qh) * RELATIVE_ERROR;
  return qh + (ql + slack) === qh && qh + (ql - slack) === qh ? qh : NaN;
}
