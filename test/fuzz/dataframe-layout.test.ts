/**
 * The DataFrame layout reader (types/arrow-layout.ts rebuildArrow) over a layout another process
 * wrote: real layouts with numbers, buffer indices and buffer sizes changed, and arbitrary values
 * in place of any field, rebuild to a Table that reads without error or are a TypeMismatch; never
 * a RangeError, a TypeError or an allocation sized by the lie.
 */
import * as fc from 'fast-check';
import type { Data, RecordBatch, Table } from 'apache-arrow';
import { rebuildArrow, type ArrowLayout } from '../../src/types/arrow-layout';
import { storeArrow } from '../fixtures/arrow-store';
import { generatedTable } from '../fixtures/arrow-tables';
import { check, onlyTyped, runs } from './properties';

const MAX_ROWS_READ = 200;

/** Every place in a layout that holds a number or null, by path, so that an edit can pick one. */
function numberPaths(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  if (typeof value === 'number' || value === null) return [path];
  if (typeof value !== 'object') return [];
  return Object.entries(value as object).flatMap(([key, child]) =>
    numberPaths(child, [...path, Array.isArray(value) ? Number(key) : key]),
  );
}

function setAt(root: unknown, path: Array<string | number>, replacement: unknown): void {
  let node = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1]] = replacement;
}

/** What a lying writer puts in place of a number: near misses, extremes and wrong types. */
const lie = fc.oneof(
  fc.integer({ min: -2, max: 70 }),
  fc.constantFrom(-1, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 1e9, 0.5, NaN, Infinity, null, '3', [], {}, true),
);

/** Values of every column and dictionary of every batch, up to a bound of rows. */
function readAll(value: Table | RecordBatch): void {
  const visit = (data: Data): void => {
    for (let row = 0; row < Math.min(data.length, MAX_ROWS_READ); row++) data.getValid(row);
    data.children.forEach(visit);
    data.dictionary?.data.forEach(visit);
  };
  ('batches' in value ? value.batches : [value]).forEach((batch) => {
    visit(batch.data);
    for (let row = 0; row < Math.min(batch.numRows, MAX_ROWS_READ); row++) batch.get(row)?.toJSON();
  });
}

/** A small generated table (every column kind of the generator, 1 to 3 batches) as stored. */
const stored = fc
  .record({ rows: fc.integer({ min: 0, max: 40 }), seed: fc.nat(), batches: fc.integer({ min: 1, max: 3 }) })
  .map(({ rows, seed, batches }) => storeArrow(generatedTable(rows, seed, batches)));

describe('fuzz: DataFrame layout reader', () => {
  it('real layouts with numbers replaced by lies rebuild and read, or are a TypeMismatch', () => {
    check(
      fc.property(stored, fc.array(fc.tuple(fc.nat(), lie), { minLength: 1, maxLength: 4 }), (store, edits) => {
        const layout = structuredClone(store.layout) as ArrowLayout;
        const paths = numberPaths(layout);
        for (const [at, value] of edits) setAt(layout, paths[at % paths.length], value);
        onlyTyped(() => readAll(rebuildArrow(layout, store.views)), ['TypeMismatch']);
      }),
      runs(1500),
    );
  });

  it('real layouts over buffers cut short or swapped rebuild and read, or are a TypeMismatch', () => {
    check(
      fc.property(stored, fc.nat(), fc.nat(), fc.nat(), (store, which, cut, other) => {
        const views = [...store.views];
        if (views.length === 0) return;
        const i = which % views.length;
        views[i] = views[i].subarray(0, cut % (views[i].length + 1));
        if (other % 2 === 0) [views[i], views[other % views.length]] = [views[other % views.length], views[i]];
        onlyTyped(() => readAll(rebuildArrow(store.layout, views)), ['TypeMismatch']);
      }),
      runs(1500),
    );
  });

  it('arbitrary values in place of any layout field are a TypeMismatch or rebuild and read', () => {
    const anything = fc.anything({ maxDepth: 2, withBigInt: true, withTypedArray: true });
    check(
      fc.property(stored, fc.nat(), anything, (store, at, value) => {
        const layout = structuredClone(store.layout) as unknown as Record<string, unknown>;
        const keys = [
          'version',
          'kind',
          'schema',
          'fields',
          'bufferTypes',
          'batches',
          'dictionaries',
          'unsetTimezones',
        ];
        layout[keys[at % keys.length]] = value;
        onlyTyped(() => readAll(rebuildArrow(layout as unknown as ArrowLayout, store.views)), ['TypeMismatch']);
      }),
      runs(1000),
    );
  });
});
