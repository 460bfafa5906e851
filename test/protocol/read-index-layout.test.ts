import * as assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import {
  packIndexedObject,
  READ_INDEX_MAX_BYTES,
  unpackIndexedObject,
  type IndexedObjectRecord,
} from '../../src/protocol/read-index-layout';

/** How a daemon or client before JSON records packs and unpacks them (the protocol's msgpack). */
const olderPackr = new Packr({ useRecords: false, mapsAsObjects: true });

/** A DataFrame's record as the daemon publishes one (two float64 columns). */
function frameRecord(fields: Record<string, unknown> = {}): IndexedObjectRecord {
  return {
    typename: 'trellis::DataFrame',
    nbytes: 1_073_741_824,
    fields: {
      layout: {
        version: 1,
        kind: 'table',
        schema: 'EAAAAAAACgAQAA4ABwAIAAoAAAAAAAABEAAAAAAABAAIAAgAAAAEAAgAAAAEAAAAAgAAAEQAAAAEAAAA1P',
        bufferTypes: ['Uint8Array', 'Float64Array', 'Float64Array'],
        batches: [{ node: { length: 67_108_864, buffers: [null, null, 0, null], children: [] } }],
        dictionaries: [],
        fields: [
          ['price', 'Float64', false],
          ['score', 'Float64', false],
        ],
      },
      numRows: 67_108_864,
      numColumns: 2,
      ...fields,
    },
    members: { b0: 'o000061fa1810c0f5', b1: 'o000061fa1810c176', b2: 'o000061fa1810c181' },
  };
}

describe('read index layout: an object record in the arena', () => {
  it('a plain record is packed as JSON and unpacks to what was packed', () => {
    const record = frameRecord({ label: 'ünïcode ✓', ratio: 0.1, negative: -3 });
    const bytes = packIndexedObject(record);
    assert.equal(bytes[0], '{'.charCodeAt(0));
    assert.deepEqual(JSON.parse(Buffer.from(bytes).toString()), record);
    assert.deepEqual(unpackIndexedObject(Buffer.from(bytes)), record);
  });

  it('a record JSON would change is packed as msgpack, and unpacks the same', () => {
    const unlike: Array<[string, unknown]> = [
      ['bytes', new Uint8Array([1, 2, 3])],
      ['a bigint', 2n ** 64n - 1n],
      ['NaN', NaN],
      ['Infinity', Infinity],
      ['-0', -0],
      ['undefined', undefined],
      ['a nested undefined', { deep: [1, undefined] }],
      ['a __proto__ key', JSON.parse('{"__proto__": 1}')],
    ];
    for (const [what, value] of unlike) {
      const record = frameRecord({ odd: value });
      const bytes = packIndexedObject(record);
      assert.notEqual(bytes[0], '{'.charCodeAt(0), `${what} packed as JSON`);
      assert.deepStrictEqual(unpackIndexedObject(bytes), olderPackr.unpack(olderPackr.pack(record)), what);
    }
  });

  it(`a record whose JSON passes ${READ_INDEX_MAX_BYTES} bytes where msgpack fits is packed as msgpack`, () => {
    // 300 doubles: 18-20 characters each in JSON, 9 bytes in msgpack.
    const record = frameRecord({ weights: Array.from({ length: 300 }, (_, i) => 1 / (i + 3)) });
    assert.ok(JSON.stringify(record).length > READ_INDEX_MAX_BYTES);
    const bytes = packIndexedObject(record);
    assert.ok(bytes.byteLength <= READ_INDEX_MAX_BYTES, `${bytes.byteLength} bytes`);
    assert.deepEqual(unpackIndexedObject(bytes), record);
  });

  it("an older daemon's msgpack record is read; an older client finds no record in a JSON one (a miss)", () => {
    const record = frameRecord();
    assert.deepEqual(unpackIndexedObject(olderPackr.pack(record)), record);
    // What pinMembers checks before it uses a record: a JSON one is not one to an older client.
    let seen: unknown;
    try {
      seen = olderPackr.unpack(packIndexedObject(record));
    } catch {
      seen = undefined;
    }
    assert.notEqual(typeof (seen as { typename?: unknown } | undefined)?.typename, 'string');
  });
});
