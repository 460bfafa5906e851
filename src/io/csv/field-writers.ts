/**
 * How the CSV writer turns one arrow column into field bytes, chosen once per column and batch.
 * The types the reader produces (Int64, Float64, Bool, DateDay, Utf8) are read straight from
 * their buffers; anything else goes through Vector.get() and a text form.
 *
 * A field is quoted when it holds the delimiter (or, with a space delimiter, a tab), the quote,
 * CR or LF, and when it would otherwise read back as null: an empty string, or the null text.
 */
import { DataType, type Data, type Field, type Vector } from 'apache-arrow';
import { TrellisError } from '../../errors';
import type { ByteSink } from './byte-sink';

export interface WriteFormat {
  delimiter: number;
  /** A second byte that also separates fields when read back (tab, with a space delimiter), or -1. */
  alsoSeparates: number;
  /** The quote byte, or -1 for never quoting. */
  quote: number;
  nullValue: Uint8Array;
}

export type FieldWriter = (row: number) => void;

const LF = 0x0a;
const CR = 0x0d;
const DAY_MS = 86_400_000;
const TWO_TO_THE_32 = 4294967296;

export function fieldWriterFor(field: Field, column: Vector, sink: ByteSink, format: WriteFormat): FieldWriter {
  const data = column.data.length === 1 ? column.data[0] : undefined;
  const isNull = nullTest(column, data);
  const writeNull = () => writeNullValue(sink, format, field);
  const direct = data && data.offset === 0 ? directWriter(field.type, data, sink, format) : undefined;
  const write = direct ?? genericWriter(field.type, column, sink, format);
  if (!isNull) return write;
  return (row) => (isNull(row) ? writeNull() : write(row));
}

/** A test for null at a row, or undefined when the column has none. */
function nullTest(column: Vector, data: Data | undefined): ((row: number) => boolean) | undefined {
  if (column.nullCount === 0) return undefined;
  const bitmap = data?.nullBitmap;
  if (data && data.offset === 0 && bitmap && bitmap.length > 0)
    return (row) => (bitmap[row >>> 3] & (1 << (row & 7))) === 0;
  return (row) => !column.isValid(row);
}

function writeNullValue(sink: ByteSink, format: WriteFormat, field: Field): void {
  if (format.nullValue.length === 0 && format.delimiter === 0x20) {
    throw new TrellisError(
      'InvalidArgument',
      `cannot write a null (column ${JSON.stringify(field.name)}) to a whitespace-separated file as an empty field; pass nullValue, such as 'NA'`,
    );
  }
  sink.copy(format.nullValue, 0, format.nullValue.length);
}

/** Writers that read the buffers of the types the reader produces. */
function directWriter(type: DataType, data: Data, sink: ByteSink, format: WriteFormat): FieldWriter | undefined {
  if (DataType.isInt(type) && type.bitWidth === 64 && type.isSigned) {
    const values = data.values as BigInt64Array;
    const words = new Int32Array(values.buffer, values.byteOffset, values.length * 2);
    return (row) => {
      const value = words[2 * row + 1] * TWO_TO_THE_32 + (words[2 * row] >>> 0);
      sink.ascii(Number.isSafeInteger(value) ? String(value) : String(values[row]));
    };
  }
  if (DataType.isFloat(type) && type.precision === 2) {
    const values = data.values as Float64Array;
    return (row) => sink.ascii(formatFloat(values[row]));
  }
  if (DataType.isBool(type)) {
    const bits = data.values as Uint8Array;
    return (row) => sink.ascii(bits[row >>> 3] & (1 << (row & 7)) ? 'true' : 'false');
  }
  if (DataType.isDate(type) && type.unit === 0) {
    const days = data.values as Int32Array;
    return (row) => sink.ascii(formatDay(days[row]));
  }
  if (DataType.isUtf8(type)) {
    const offsets = data.valueOffsets as Int32Array;
    const bytes = data.values as Uint8Array;
    return (row) => writeStringBytes(sink, format, bytes, offsets[row], offsets[row + 1]);
  }
  return undefined;
}

function genericWriter(type: DataType, column: Vector, sink: ByteSink, format: WriteFormat): FieldWriter {
  const text = (toText: (value: unknown) => string, isString: boolean) => (row: number) => {
    const formatted = toText(column.get(row));
    if (!isString) return sink.text(formatted);
    const bytes = Buffer.from(formatted, 'utf8');
    writeStringBytes(sink, format, bytes, 0, bytes.length);
  };
  if (DataType.isInt(type) || DataType.isDecimal(type)) return text(String, false);
  if (DataType.isFloat(type)) return text((value) => formatFloat(Number(value)), false);
  if (DataType.isBool(type)) return text((value) => (value ? 'true' : 'false'), false);
  if (DataType.isDate(type)) {
    return text((value) => {
      const ms = value instanceof Date ? value.getTime() : Number(value);
      const iso = new Date(ms).toISOString();
      return ms % DAY_MS === 0 ? iso.slice(0, 10) : iso;
    }, false);
  }
  if (DataType.isTimestamp(type))
    return text((value) => new Date(value instanceof Date ? value.getTime() : Number(value)).toISOString(), false);
  return text(
    (value) => (typeof value === 'object' && value !== null ? JSON.stringify(value, jsonSafe) : String(value)),
    true,
  );
}

/**
 * Days since 1970-01-01 as YYYY-MM-DD (Howard Hinnant's civil_from_days), without a Date: a
 * Date and toISOString() cost several times more. Years outside 0..9999 fall back to Date.
 */
export function formatDay(days: number): string {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const dayOfEra = z - era * 146097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36524) - Math.floor(dayOfEra / 146096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) return new Date(days * DAY_MS).toISOString().slice(0, 10);
  return `${String(year).padStart(4, '0')}-${month < 10 ? '0' : ''}${month}-${day < 10 ? '0' : ''}${day}`;
}

/** Whole floats keep a '.0' (as pandas writes them), so that reading back infers float64 again. */
export function formatFloat(value: number): string {
  if (Object.is(value, -0)) return '-0.0';
  const text = String(value);
  return Number.isInteger(value) && !text.includes('e') ? `${text}.0` : text;
}

function writeStringBytes(sink: ByteSink, format: WriteFormat, bytes: Uint8Array, start: number, end: number): void {
  const { delimiter, alsoSeparates, quote, nullValue } = format;
  let quoted = start === end || (nullValue.length === end - start && sameBytes(bytes, start, nullValue));
  for (let i = start; i < end && !quoted; i++) {
    const byte = bytes[i];
    quoted = byte === delimiter || byte === quote || byte === LF || byte === CR || byte === alsoSeparates;
  }
  if (!quoted) return sink.copy(bytes, start, end);
  if (quote < 0) {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8');
    throw new TrellisError(
      'InvalidArgument',
      `cannot write ${JSON.stringify(text)} without quoting (quote is null); choose a quote character or another delimiter`,
    );
  }
  sink.copyQuoted(bytes, start, end, quote);
}

function sameBytes(bytes: Uint8Array, start: number, other: Uint8Array): boolean {
  for (let i = 0; i < other.length; i++) if (bytes[start + i] !== other[i]) return false;
  return true;
}

/** JSON for nested values: bigints as their digits, arrow rows and vectors as plain data. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  const object = value as { toJSON?: () => unknown } | null;
  return object && typeof object === 'object' && typeof object.toJSON === 'function' && !(object instanceof Date)
    ? object.toJSON()
    : value;
}
