/** Numbers as the tables print them: binary sizes, durations in the unit that fits, rates. */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** The daemon's own formatting, so tables and error messages say sizes the same way. */
export { formatBytes } from '../../src/daemon/sizes';

/** Nanoseconds in ns, µs, ms or s, with three significant digits. */
export function formatDuration(ns: number): string {
  if (!Number.isFinite(ns)) return '-';
  if (ns < 1e3) return `${ns.toPrecision(3)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toPrecision(3)} ms`;
  return `${(ns / 1e9).toPrecision(3)} s`;
}

/** Bytes moved per second, in decimal GB/s (the unit memcpy figures are usually quoted in). */
export function formatRate(bytes: number, ns: number): string {
  if (!(ns > 0)) return '-';
  const gbPerSecond = bytes / ns;
  return gbPerSecond >= 10 ? gbPerSecond.toFixed(1) : gbPerSecond.toPrecision(2);
}

/** A ratio with two significant digits, such as '0.71x' or '2.9x'. */
export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio)) return '-';
  return `${ratio >= 10 ? ratio.toFixed(0) : ratio.toPrecision(2)}x`;
}
