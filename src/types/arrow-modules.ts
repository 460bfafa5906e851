/**
 * The apache-arrow modules the arrow layout takes its classes and enums from (data.js, enum.js,
 * ...), required by their file in the package `require.resolve('apache-arrow')` finds, instead of
 * as 'apache-arrow/data' and so on. Node resolves each such subpath through the package's
 * "exports" patterns (URLs made and matched in JS, and a package.json read per lookup folder):
 * about 0.1-0.2 ms a name in a fresh process, and connect() loads the layout (preloadArrowLayout)
 * with eight of them. A file path is one stat. The files are those the package's "./*" export
 * maps the names to, so the classes are the same objects (one module per file in the cache).
 *
 * Each name is a value and a type of the same name, as the import it replaces gave.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the type parameters' defaults are apache-arrow's own */
import * as path from 'node:path';
import type * as DataModule from 'apache-arrow/data';
import type * as EnumModule from 'apache-arrow/enum';
import type * as RecordBatchModule from 'apache-arrow/recordbatch';
import type * as SchemaModule from 'apache-arrow/schema';
import type * as TableModule from 'apache-arrow/table';
import type * as TypeModule from 'apache-arrow/type';
import type * as VectorModule from 'apache-arrow/vector';
import type { DataType, TypeMap } from 'apache-arrow/type';

const ARROW_ROOT = path.dirname(require.resolve('apache-arrow'));

/** apache-arrow's `<name>.js`, as `require('apache-arrow/<name>')` gives it. */
function arrowModule<T>(name: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a file of the package by path (see the top)
  return require(path.join(ARROW_ROOT, `${name}.js`)) as T;
}

const dataModule = arrowModule<typeof DataModule>('data');
const enumModule = arrowModule<typeof EnumModule>('enum');
const schemaModule = arrowModule<typeof SchemaModule>('schema');
const typeModule = arrowModule<typeof TypeModule>('type');

export const Data = dataModule.Data;
export type Data<T extends DataType = DataType> = DataModule.Data<T>;

export const MetadataVersion = enumModule.MetadataVersion;
export type MetadataVersion = EnumModule.MetadataVersion;
export const Precision = enumModule.Precision;
export type Precision = EnumModule.Precision;
export const Type = enumModule.Type;
export type Type = EnumModule.Type;
export const UnionMode = enumModule.UnionMode;
export type UnionMode = EnumModule.UnionMode;

export const RecordBatch = arrowModule<typeof RecordBatchModule>('recordbatch').RecordBatch;
export type RecordBatch<T extends TypeMap = any> = RecordBatchModule.RecordBatch<T>;

export const Field = schemaModule.Field;
export type Field<T extends DataType = any> = SchemaModule.Field<T>;
export const Schema = schemaModule.Schema;
export type Schema<T extends TypeMap = any> = SchemaModule.Schema<T>;

export const Table = arrowModule<typeof TableModule>('table').Table;
export type Table<T extends TypeMap = any> = TableModule.Table<T>;

export const Binary = typeModule.Binary;
export type Binary = TypeModule.Binary;
export const Bool = typeModule.Bool;
export type Bool = TypeModule.Bool;
export const Float = typeModule.Float;
export type Float = TypeModule.Float;
export const Int = typeModule.Int;
export type Int = TypeModule.Int;
export const LargeBinary = typeModule.LargeBinary;
export type LargeBinary = TypeModule.LargeBinary;
export const LargeUtf8 = typeModule.LargeUtf8;
export type LargeUtf8 = TypeModule.LargeUtf8;
export const Struct = typeModule.Struct;
export type Struct<T extends TypeMap = any> = TypeModule.Struct<T>;
export const Utf8 = typeModule.Utf8;
export type Utf8 = TypeModule.Utf8;

export const Vector = arrowModule<typeof VectorModule>('vector').Vector;
export type Vector<T extends DataType = any> = VectorModule.Vector<T>;
