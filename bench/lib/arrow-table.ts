/**
 * apache-arrow workloads for the bench: a wide numeric table of a chosen size (typed arrays
 * wrapped as columns, no per-row builder calls), and the ways of looking at a table that cost
 * what a user pays (touching its pages, checking its cells).
 */
import { tableFromArrays, type Table } from 'apache-arrow';

/** Columns of the bench table: two float64 and two int64, 8 bytes a row each. */
export const BENCH_COLUMNS = ['price', 'volume', 'score', 'timestamp'] as const;
export const BENCH_ROW_BYTES = 8 * BENCH_COLUMNS.length;
const PAGE_BYTES = 4096;

/** A table of `bytes` bytes of column data (rounded down to whole rows); deterministic contents. */
export function makeBenchTable(bytes: number): Table {
  const rows = Math.floor(bytes / BENCH_ROW_BYTES);
  const price = new Float64Array(rows);
  const volume = new BigInt64Array(rows);
  const score = new Float64Array(rows);
  const timestamp = new BigInt64Array(rows);
  // Filling through aliasing typed arrays keeps this a plain numeric loop (BigInt per row is slow).
  const volumeWords = new Int32Array(volume.buffer);
  const timestampWords = new Int32Array(timestamp.buffer);
  for (let i = 0; i < rows; i++) {
    price[i] = 100 + (i % 1000) / 8;
    volumeWords[2 * i] = i;
    score[i] = i / rows;
    timestampWords[2 * i] = 1_700_000_000 + i;
  }
  return tableFromArrays({ price, volume, score, timestamp });
}

/** Bytes of every buffer of every column chunk (values, offsets, validity). */
export function tableBytes(table: Table): number {
  let total = 0;
  for (const field of table.schema.fields) {
    for (const data of table.getChild(field.name)!.data) {
      for (const buffer of [data.values, data.valueOffsets, data.nullBitmap, data.typeIds])
        total += buffer?.byteLength ?? 0;
    }
  }
  return total;
}

/** The values buffers of every column chunk, as bytes. */
export function valueBuffers(table: Table): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const field of table.schema.fields) {
    for (const data of table.getChild(field.name)!.data) {
      const values = data.values as ArrayBufferView | undefined;
      if (values) out.push(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    }
  }
  return out;
}

/** Reads one byte of every 4 KiB page of every values buffer; returns a checksum so nothing is optimized away. */
export function touchEveryPage(table: Table): number {
  let sum = 0;
  for (const bytes of valueBuffers(table)) {
    for (let offset = 0; offset < bytes.length; offset += PAGE_BYTES) sum += bytes[offset];
  }
  return sum;
}

/** A few cells, compared against what makeBenchTable wrote, so a fast path cannot be a wrong one. */
export function checkBenchTable(table: Table, expectedRows: number): void {
  if (table.numRows !== expectedRows) throw new Error(`table has ${table.numRows} rows, expected ${expectedRows}`);
  const last = expectedRows - 1;
  for (const i of [0, 1, last]) {
    const price = table.getChild('price')!.get(i) as number;
    const timestamp = table.getChild('timestamp')!.get(i) as bigint;
    if (price !== 100 + (i % 1000) / 8 || timestamp !== BigInt(1_700_000_000 + i)) {
      throw new Error(`table row ${i} holds price ${price}, timestamp ${timestamp}: not what was written`);
    }
  }
}
