import * as assert from 'node:assert/strict';
import * as arrow from 'apache-arrow';
import * as arrowModules from '../../src/types/arrow-modules';

/** Where each name comes from in the package, by its exported subpath ("./*"). */
const SUBPATHS: Record<string, string> = {
  Data: 'data',
  MetadataVersion: 'enum',
  Precision: 'enum',
  Type: 'enum',
  UnionMode: 'enum',
  RecordBatch: 'recordbatch',
  Field: 'schema',
  Schema: 'schema',
  Table: 'table',
  Binary: 'type',
  Bool: 'type',
  Float: 'type',
  Int: 'type',
  LargeBinary: 'type',
  LargeUtf8: 'type',
  Struct: 'type',
  Utf8: 'type',
  Vector: 'vector',
};

describe('arrow modules: the arrow layout takes apache-arrow files by path', () => {
  it("every name is the package's own object, as its index and its subpath export give it", () => {
    const names = Object.keys(arrowModules).sort();
    assert.deepEqual(names, Object.keys(SUBPATHS).sort());
    for (const name of names) {
      const ours = (arrowModules as Record<string, unknown>)[name];
      assert.ok(ours !== undefined, name);
      assert.equal(ours, (arrow as Record<string, unknown>)[name], `${name} is not the index's`);
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the subpath, as resolved by Node
      const fromSubpath = (require(`apache-arrow/${SUBPATHS[name]}`) as Record<string, unknown>)[name];
      assert.equal(ours, fromSubpath, `${name} is not apache-arrow/${SUBPATHS[name]}'s`);
    }
  });

  it('loads no second copy of a module: one file of each in the require cache', () => {
    const loaded = Object.keys(require.cache).filter((file) =>
      /node_modules[\\/]apache-arrow[\\/][a-z]+\.js$/.test(file),
    );
    assert.equal(new Set(loaded).size, loaded.length);
    for (const module of new Set(Object.values(SUBPATHS)))
      assert.equal(loaded.filter((file) => file.endsWith(`${module}.js`)).length, 1, module);
  });
});
