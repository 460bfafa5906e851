/**
 * A RecordBatch and a Table put together around their constructors, when the constructors
 * would change nothing. A fresh process that loaded apache-arrow before trellis (as a worker
 * handling Tables does) runs arrow's code uncompiled and uncached: its first `new RecordBatch`
 * cost ~0.75 ms and its first `new Table` ~0.45 ms of CPU, most of it compiling what they call
 * (makeData's visitor, Schema.assign, compareSchemas, the chunk helpers), about a quarter of a
 * fresh reader's first DataFrame get. For a batch trellis rebuilt itself, all of that re-makes
 * objects it already has:
 *
 * - `new RecordBatch(schema, data)` pads columns shorter than the batch with nulls, then copies
 *   the schema (Schema.assign) and re-makes the struct node with makeData, which keeps only its
 *   type, length and children (offset 0, no nulls, an empty validity bitmap). For a struct node
 *   already so, with every column as long as the batch (checkBatchColumns), the result is equal
 *   to the schema and node it was given: they are used as they are.
 * - `new Table(schema, batches)` checks every batch's schema against the table's
 *   (compareSchemas) and sums the batch lengths into `_offsets`. Batches that share the table's
 *   schema object pass the check; the offsets are summed here.
 *
 * What is set is what the constructors set, in their order (schema, data, _metadata; schema,
 * batches, _offsets); the test/types/arrow-assembly.test.ts compares both ways field by field
 * for the apache-arrow version installed, so a version that sets more fails there. Anything not
 * plainly so goes through the constructors.
 */
import { Data, RecordBatch, Schema, Table, type Struct } from 'apache-arrow';

/** The fields `new RecordBatch` sets, in its order. */
interface BatchFields {
  schema: Schema;
  data: Data<Struct>;
  _metadata: Map<string, string>;
}

/** The fields `new Table` sets, in its order. */
interface TableFields {
  schema: Schema;
  batches: RecordBatch[];
  _offsets: Uint32Array;
}

/** The constructor-free objects are made only where this arrow reads them as its own instances. */
const ASSEMBLES =
  (RecordBatch.prototype as unknown as { _nullCount: number })._nullCount === -1 &&
  (Table.prototype as unknown as { _nullCount: number })._nullCount === -1;

/**
 * A struct node that `new RecordBatch` would re-make into one equal to it (see the top). Read
 * from the fields the Data constructor set: the nullCount getter is one more arrow function to
 * compile, and a count not known yet (-1) goes to the constructor anyway.
 */
function isPlainBatchNode(data: Data<Struct>): boolean {
  const nullCount = (data as unknown as { _nullCount: number })._nullCount;
  if (data.offset !== 0 || nullCount !== 0 || (data.nullBitmap !== undefined && data.nullBitmap.byteLength > 0))
    return false;
  for (const child of data.children) if (child.length !== data.length) return false;
  return true;
}

/** `new RecordBatch(schema, data, metadata)`, made without the constructor when it would change nothing. */
export function assembleRecordBatch(schema: Schema, data: Data<Struct>, metadata: Map<string, string>): RecordBatch {
  if (!ASSEMBLES || !isPlainBatchNode(data)) return new RecordBatch(schema, data, metadata);
  const batch = Object.create(RecordBatch.prototype) as BatchFields;
  batch.schema = schema;
  batch.data = data;
  batch._metadata = metadata;
  return batch as unknown as RecordBatch;
}

/** `new Table(schema, batches)`, made without the constructor when every batch shares the schema. */
export function assembleTable(schema: Schema, batches: RecordBatch[]): Table {
  if (!ASSEMBLES || !batches.every((batch) => batch.schema === schema)) return new Table(schema, batches);
  const offsets = new Uint32Array(batches.length + 1);
  for (let i = 0; i < batches.length; i++) offsets[i + 1] = offsets[i] + batches[i].data.length;
  const table = Object.create(Table.prototype) as TableFields;
  table.schema = schema;
  table.batches = batches;
  table._offsets = offsets;
  return table as unknown as Table;
}
