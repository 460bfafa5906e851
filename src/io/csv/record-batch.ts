/**
 * From the parser's column buffers to apache-arrow objects. The arrow type of each column type:
 * int64 -> Int64, float64 -> Float64, bool -> Bool, date -> DateDay (days since the epoch; arrow
 * reads it back as milliseconds), string -> Utf8. Every field is nullable, since any chunk may
 * hold a null. Nothing is copied: the arrow Data wraps the typed arrays as they are.
 */
import {
  Bool,
  DateDay,
  Field,
  Float64,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  type Data,
  type DataType,
} from 'apache-arrow';
import type { ColumnBuffers } from './buffers';
import type { CsvColumnType } from './options';

export function arrowTypeFor(type: CsvColumnType): DataType {
  switch (type) {
    case 'int64':
      return new Int64();
    case 'float64':
      return new Float64();
    case 'bool':
      return new Bool();
    case 'date':
      return new DateDay();
    case 'string':
      return new Utf8();
  }
}

export function makeSchema(names: readonly string[], types: readonly CsvColumnType[]): Schema {
  return new Schema(names.map((name, i) => new Field(name, arrowTypeFor(types[i]), true)));
}

function columnData(field: Field, column: ColumnBuffers): Data {
  const { length, nullCount, validity: nullBitmap } = column;
  switch (column.type) {
    case 'int64': {
      const words = column.values as Int32Array;
      return makeData({
        type: field.type as Int64,
        length,
        nullCount,
        nullBitmap,
        data: new BigInt64Array(words.buffer, words.byteOffset, length),
      });
    }
    case 'float64':
      return makeData({
        type: field.type as Float64,
        length,
        nullCount,
        nullBitmap,
        data: column.values as Float64Array,
      });
    case 'bool':
      return makeData({ type: field.type as Bool, length, nullCount, nullBitmap, data: column.values as Uint8Array });
    case 'date':
      return makeData({
        type: field.type as DateDay,
        length,
        nullCount,
        nullBitmap,
        data: column.values as Int32Array,
      });
    case 'string':
      return makeData({
        type: field.type as Utf8,
        length,
        nullCount,
        nullBitmap,
        data: column.values as Uint8Array,
        valueOffsets: column.offsets!,
      });
  }
}

/** One RecordBatch of `rows` rows over the columns' buffers. */
export function makeRecordBatch(schema: Schema, columns: readonly ColumnBuffers[], rows: number): RecordBatch {
  const children = schema.fields.map((field, i) => columnData(field, columns[i]));
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children }));
}
