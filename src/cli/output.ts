/**
 * Human output: compact aligned tables, sizes and ages; and JSON for scripts. Rows are printed
 * as given; a column whose title starts with '>' is right-aligned (numbers and sizes).
 */
export { formatBytes } from '../daemon/sizes';

export function printTable(titles: string[], rows: string[][], out: NodeJS.WritableStream = process.stdout): void {
  const right = titles.map((title) => title.startsWith('>'));
  const header = titles.map((title) => title.replace(/^>/, ''));
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (right[column] ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd();
  out.write([line(header), ...rows.map(line)].join('\n') + '\n');
}

/** JSON for scripts: bigints as numbers when exact (else strings), typed arrays as arrays, two-space indent. */
export function printJson(value: unknown, out: NodeJS.WritableStream = process.stdout): void {
  out.write(toJson(value) + '\n');
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, jsonReplacer, 2);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return jsonBigInt(value);
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<unknown>, (x) => (typeof x === 'bigint' ? jsonBigInt(x) : x));
  }
  return value;
}

function jsonBigInt(value: bigint): number | string {
  return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
}

/** 42s, 5m, 3h, 2d: the largest whole unit. */
export function formatAge(milliseconds: number): string {
  const seconds = Math.max(0, Math.floor(milliseconds / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}
