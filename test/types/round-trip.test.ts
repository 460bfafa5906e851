import * as assert from 'node:assert/strict';
import { connect, ShareableList, type TrellisClient } from '../../src/index';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { describeValue } from '../fixtures/describe-value';
import { settledStatus } from '../fixtures/status';

describe('built-in types between processes', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  before(async () => {
    daemon = await startTestDaemon(['--size', '64MiB']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  const cases: Record<string, () => unknown> = {
    'value/object': () => ({
      text: 'héllo ☃',
      n: 42,
      f: -1.5,
      yes: true,
      no: false,
      none: null,
      list: [1, 'two', [3]],
      nested: { deep: { deeper: 'x' } },
    }),
    'value/bigint': () => ({ big: 2n ** 63n - 1n, negative: -(2n ** 62n) }),
    'value/date': () => new Date(Date.UTC(2026, 10, 21, 12, 0, 0, 123)),
    'value/string': () => 'just a string',
    'value/empty-string': () => '',
    'value/empty-object': () => ({}),
    'value/empty-array': () => [],
    'value/number': () => 3.25,
    'value/null': () => null,
    'value/large': () => ({ rows: Array.from({ length: 20000 }, (_, i) => ({ i, s: `row ${i}` })) }),
    'blob/buffer': () => Buffer.from('raw bytes \x00\xff'),
    'blob/empty': () => Buffer.alloc(0),
    'blob/uint8array': () => new Uint8Array([1, 2, 3]),
    'tensor/float64': () => new Float64Array([1.5, -2, Math.PI]),
    'tensor/float32': () => new Float32Array([0.5, 1]),
    'tensor/int8': () => new Int8Array([-128, 127]),
    'tensor/int16': () => new Int16Array([-1, 2]),
    'tensor/int32': () => new Int32Array([-(2 ** 31), 2 ** 31 - 1]),
    'tensor/uint16': () => new Uint16Array([65535]),
    'tensor/uint32': () => new Uint32Array([2 ** 32 - 1]),
    'tensor/uint8clamped': () => new Uint8ClampedArray([0, 255]),
    'tensor/int64': () => new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]),
    'tensor/uint64': () => new BigUint64Array([2n ** 64n - 1n]),
    'tensor/empty': () => new Float64Array(0),
    'sequence/mixed': () => [new Int32Array([7, 8]), Buffer.from('seq'), { plain: true }, 'text'],
  };

  it('every built-in type round-trips to another process by name, zero-copy where it can', async () => {
    const expected: Record<string, unknown> = {};
    for (const [name, make] of Object.entries(cases)) {
      await client.put(make(), { name });
      expected[name] = describeValue(make());
    }
    const list = await ShareableList.create(client, [Buffer.from('a'), 'bb', 1234, 56.78, true, null]);
    await client.put(list, { name: 'list/reference' });
    expected['list/reference'] = describeValue([Buffer.from('a'), 'bb', 1234, 56.78, true, null]);
    (expected['list/reference'] as { kind: string }).kind = 'ShareableList';

    const reader = startChild('type-reader.ts', [daemon.socket, ...Object.keys(expected)]);
    const described = await reader.next<Record<string, unknown>>();
    assert.equal(await reader.exited, 0);
    for (const name of Object.keys(expected)) assert.deepEqual(described[name], expected[name], name);
  });

  it('a small put and a named put are one request each; a get by name is one', async () => {
    const before = await client.status();
    await client.put({ small: 'value' }, { name: 'one-trip' });
    const middle = await client.status();
    assert.equal(middle.requests - before.requests, 2, 'the put, then this status');
    await client.get('one-trip');
    const after = await client.status();
    assert.equal(after.requests - middle.requests, 2, 'the get, then this status');
    await client.put(new Float64Array(1000), { name: 'small-tensor' });
    const small = await client.status();
    assert.equal(small.requests - after.requests, 2, 'createMetadata with the 8000 bytes inline, status');
    await client.put(new Float64Array(10_000), { name: 'two-trips' });
    const large = await client.status();
    assert.equal(large.requests - small.requests, 3, 'createBlobs, createMetadata (seal + name), status');
  });

  it('putMany stores small values in one request, all or none', async () => {
    const values = Array.from({ length: 1000 }, (_, i) => ({ i, label: `item ${i}` }));
    const before = await client.status();
    const ids = await client.putMany(values);
    const after = await client.status();
    assert.equal(after.requests - before.requests, 2, 'one createMetadataMany, then this status');
    assert.deepEqual(await client.get(ids[999]), values[999]);
    await client.put('holder', { name: 'batch/taken' });
    await assert.rejects(client.putMany(['x', 'y'], [{ name: 'batch/free' }, { name: 'batch/taken' }]), {
      code: 'NameExists',
    });
    assert.equal(
      await client.listNames({ pattern: 'batch/free' }).then((n) => n.length),
      0,
      'nothing of the batch was kept',
    );
    assert.equal((await client.status()).objects, after.objects + 1);
    const mixed = await client.putMany([1, new Float64Array([2]), 'three']);
    assert.deepEqual(await client.get(mixed[0]), 1);
    assert.deepEqual([...(await client.get(mixed[1]))], [2]);
  });

  it('a value no builder takes is a TypeMismatch and stores nothing', async () => {
    const before = await client.status();
    for (const value of [undefined, () => 1, Symbol('s'), new Map(), { nested: new Set() }]) {
      await assert.rejects(client.put(value), (error: Error & { code: string }) => {
        assert.equal(error.code, 'TypeMismatch');
        assert.match(error.message, /no builder takes a value of type \w+/);
        return true;
      });
    }
    const after = await client.status();
    assert.equal(after.objects, before.objects);
  });

  it('an unknown typename resolves to the raw object', async () => {
    const [writer] = await client.createBlobs([4]);
    writer.buffer.writeUInt32LE(77);
    const id = await client.createMetadata(
      { typename: 'unregistered::Widget', members: { payload: writer.id }, color: 'blue' },
      { seal: [writer] },
    );
    const raw = await client.get(id);
    assert.equal(raw.typename, 'unregistered::Widget');
    assert.equal(raw.fields.color, 'blue');
    assert.equal(raw.member('payload').buffer.readUInt32LE(0), 77);
    assert.throws(() => raw.member('nope'), {
      code: 'ObjectNotFound',
      message: new RegExp(`${id} \\(unregistered::Widget\\) has no member "nope"`),
    });
  });

  it('memory returns to its baseline once everything put is deleted', async () => {
    const fresh = await connect(daemon.socket);
    const before = await fresh.status();
    const ids = [
      await fresh.put(new Float64Array(100000)),
      await fresh.put([Buffer.alloc(1000), new Int32Array(50)]),
      await fresh.put({ x: 'y'.repeat(100000) }),
    ];
    assert.ok((await fresh.status()).memoryUsage > before.memoryUsage);
    await fresh.delete(ids);
    const after = await settledStatus(fresh, (s) => s.memoryUsage === before.memoryUsage);
    assert.equal(after.memoryUsage, before.memoryUsage);
    assert.equal(after.objects, before.objects);
    await fresh.close();
  });
});
