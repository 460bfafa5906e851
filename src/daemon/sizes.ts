/** Byte sizes as people write them: 512MiB, 2GiB, 1G, 64k, 1048576. */
import { TrellisError } from '../errors';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

export function parseSize(text: string | number): number {
  if (typeof text === 'number') {
    if (Number.isSafeInteger(text) && text > 0) return text;
    throw new TrellisError('InvalidArgument', `size must be a positive integer, got ${text}`);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match ? UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new TrellisError(
      'InvalidArgument',
      `cannot read size "${text}": use bytes or a unit such as 512MiB, 2GiB, 1G`,
    );
  }
  const bytes = Math.floor(parseFloat(match[1]) * unit);
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) {
    throw new TrellisError('InvalidArgument', `size "${text}" must be positive`);
  }
  return bytes;
}

/** 1024 -> '1 KiB', 1536 -> '1.50 KiB': whole numbers print without decimals. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}
