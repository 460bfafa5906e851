/**
 * Object records as etcd holds them: what a daemon writes it reads back, and a value anyone with
 * access to etcd could have written wrongly is ignored rather than trusted.
 */
import * as assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { ownBytes } from '../../src/daemon/own-bytes';
import {
  decodeNameHistory,
  decodeNameTarget,
  decodeRecord,
  encodeNameHistory,
  encodeRecord,
  objectKey,
  type ObjectRecord,
} from '../../src/daemon/cluster/records';

const GLOBAL = 'o0002000000000001';
const LOCAL_PART = 'o0002000000000002';
const REMOTE_PART = 'o0001000000000003';

const remotePartMeta = {
  id: REMOTE_PART,
  typename: 'trellis::Tensor',
  nbytes: 16,
  instanceId: 1,
  createdAt: 1,
  labels: {},
  fields: { shape: [2] },
  members: {},
};

const globalRecord: ObjectRecord = {
  typename: 'demo::Partitioned',
  nbytes: 24,
  createdAt: 2,
  labels: {},
  fields: { rows: 3 },
  members: { p0: REMOTE_PART, p1: LOCAL_PART },
  blob: false,
  remoteMembers: { p0: remotePartMeta },
};

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

describe('object records', () => {
  it('reads back what it wrote, with the owner from the id and the lease from etcd', () => {
    const decoded = decodeRecord(objectKey(GLOBAL), encodeRecord(globalRecord), '7');
    assert.deepEqual(decoded, { ...globalRecord, id: GLOBAL, instanceId: 2, lease: '7', expiresAt: undefined });
  });

  it('ignores a record whose remote members do not describe its members', () => {
    const wrongId = { ...globalRecord, remoteMembers: { p0: { ...remotePartMeta, id: LOCAL_PART } } };
    const unknownKey = { ...globalRecord, remoteMembers: { p9: remotePartMeta } };
    const notAMeta = { ...globalRecord, remoteMembers: { p0: 'o0001000000000003' } };
    for (const record of [wrongId, unknownKey, notAMeta]) {
      assert.equal(
        decodeRecord(objectKey(GLOBAL), packr.pack(record), '7'),
        undefined,
        JSON.stringify(record.remoteMembers),
      );
    }
  });

  it('ignores values that are not records, and keys that are not object ids', () => {
    assert.equal(decodeRecord(objectKey(GLOBAL), Buffer.from('not msgpack at all \xc1'), '7'), undefined);
    assert.equal(
      decodeRecord(objectKey(GLOBAL), packr.pack({ ...globalRecord, members: { p0: 'not an id' } }), '7'),
      undefined,
    );
    assert.equal(decodeRecord('objects/nope', encodeRecord(globalRecord), '7'), undefined);
  });

  it('a name value carries its kept versions; the bare id older daemons wrote reads as version 1', () => {
    const versions = [
      { version: 5, id: GLOBAL, createdAt: 2000 },
      { version: 3, id: 'o0000000700000002', createdAt: 1000 },
    ];
    const history = { versions, last: 6 };
    assert.deepEqual(decodeNameHistory(encodeNameHistory(history)), history);
    assert.equal(decodeNameTarget(encodeNameHistory(history)), GLOBAL);
    const bare = { versions: [{ version: 1, id: GLOBAL, createdAt: 0 }], last: 1 };
    assert.deepEqual(decodeNameHistory(Buffer.from(GLOBAL)), bare);
    assert.equal(decodeNameHistory(Buffer.from('{"versions":[]}')), undefined);
    assert.equal(decodeNameHistory(Buffer.from('{"versions":[{"version":1,"id":"nope","createdAt":1}]}')), undefined);
    assert.equal(decodeNameHistory(Buffer.from('not json')), undefined);
  });
});

describe('decodeRecord and the bytes of fields', () => {
  it('bytes in fields are views of the value read (a listing copies nothing); ownBytes makes them their own', () => {
    const data = Buffer.alloc(100, 7);
    const value = encodeRecord({
      typename: 'trellis::Value',
      nbytes: 0,
      createdAt: 1,
      labels: {},
      fields: { data, nested: [{ more: Buffer.alloc(10, 1) }] },
      members: {},
      blob: false,
    });
    const record = decodeRecord(objectKey(GLOBAL), value, '0')!;
    const read = record.fields.data as Uint8Array;
    assert.deepEqual(Buffer.from(read), data);
    assert.equal(read.buffer, value.buffer, 'a view of the value, not a copy');
    ownBytes(record.fields);
    const own = record.fields.data as Uint8Array;
    const more = (record.fields.nested as Array<{ more: Uint8Array }>)[0].more;
    assert.deepEqual(Buffer.from(own), data);
    assert.deepEqual(Buffer.from(more), Buffer.alloc(10, 1));
    assert.notEqual(own.buffer, value.buffer);
    assert.equal(own.buffer, more.buffer, "one allocation for the record's bytes");
    assert.equal(own.buffer.byteLength, 110);
  });
});
