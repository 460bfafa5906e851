/**
 * Whether a value is an apache-arrow Table or RecordBatch, without loading apache-arrow (about
 * 40 ms) in processes that never use it. Arrow JS brands its classes with registered symbols,
 * which also recognises a Table made by another copy of the library (a user's own install),
 * where instanceof would not.
 */
import type { RecordBatch, Table } from 'apache-arrow';

const TABLE_BRAND = Symbol.for('apache-arrow/Table');
const RECORD_BATCH_BRAND = Symbol.for('apache-arrow/RecordBatch');

export function isArrowTable(value: unknown): value is Table {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[TABLE_BRAND] === true;
}

export function isArrowRecordBatch(value: unknown): value is RecordBatch {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[RECORD_BATCH_BRAND] === true;
}
