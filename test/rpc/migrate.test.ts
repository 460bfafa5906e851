import * as assert from 'node:assert/strict';
import type { Table } from 'apache-arrow';
import { connect, type ObjectMeta, type TrellisClient } from '../../src/index';
import { assertValuesEqual } from '../fixtures/arrow-compare';
import { generatedTable } from '../fixtures/arrow-tables';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { settledStatus } from '../fixtures/status';
import { expectRejects } from '../fixtures/trellis-errors';

/** The parts of a metadata tree a copy must keep: everything but ids, instance and time. */
function shape(meta: ObjectMeta): unknown {
  return {
    typename: meta.typename,
    nbytes: meta.nbytes,
    labels: meta.labels,
    fields: meta.fields,
    members: Object.fromEntries(Object.entries(meta.members).map(([key, member]) => [key, shape(member)])),
  };
}

describe('migrate: copying objects between daemons over their RPC ports', function () {
  let a: TestDaemon;
  let b: TestDaemon;
  let onA: TrellisClient;
  let onB: TrellisClient;
  before(async () => {
    a = await startTestDaemon(['--rpc-port', '0', '--instance-id', '1', '--size', '256MiB']);
    b = await startTestDaemon([
      '--rpc-port',
      '0',
      '--instance-id',
      '2',
      '--size',
      '256MiB',
      '--rpc-peer',
      `1=${a.rpcEndpoint}`,
    ]);
    onA = await connect(a.socket);
    onB = await connect(b.socket);
  });
  after(async () => {
    await onA?.close();
    await onB?.close();
    await b?.stop();
    await a?.stop();
  });

  it('copies a multi-blob object (an arrow Table): equal value and structure, memory accounted on both sides', async () => {
    const table = generatedTable(50_000, 3);
    const aEmpty = await onA.status();
    const id = await onA.put(table, { labels: { origin: 'a' } });
    const aAfterPut = await onA.status();
    const stored = aAfterPut.memoryUsage - aEmpty.memoryUsage;
    const bBefore = await onB.status();

    const copy = await onB.migrate(id);
    assert.notEqual(copy, id);
    assert.equal(parseInt(copy.slice(1, 5), 16), b.instanceId, 'the copy is an object of B');
    const [original, copied] = [await onA.getMeta(id), await onB.getMeta(copy)];
    assert.deepEqual(shape(copied), shape(original));
    assert.equal(copied.instanceId, b.instanceId);
    assertValuesEqual((await onB.get(copy)) as Table, table);

    const bAfter = await onB.status();
    assert.equal(bAfter.memoryUsage - bBefore.memoryUsage, stored, 'B holds exactly what A stored');
    assert.equal(
      bAfter.objects - bBefore.objects,
      aAfterPut.objects - aEmpty.objects,
      'B has one object per object of the tree',
    );
    // A let go of what it lent: same memory, nothing waiting, the original intact.
    const aAfter = await settledStatus(onA, (status) => status.deferredFrees === aAfterPut.deferredFrees);
    assert.equal(aAfter.memoryUsage, aAfterPut.memoryUsage);
    assert.equal(aAfter.objects, aAfterPut.objects);
    assertValuesEqual((await onA.get(id)) as Table, table);
  });

  it('a second migrate of the same object is free: the same id, no new memory or objects', async () => {
    const id = await onA.put(new Float64Array(100_000).map((_, i) => i / 3));
    const first = await onB.migrate(id);
    const before = await onB.status();
    const requestsOnA = (await onA.status()).requests;
    assert.equal(await onB.migrate(id), first);
    const after = await onB.status();
    assert.equal(after.memoryUsage, before.memoryUsage);
    assert.equal(after.objects, before.objects);
    assert.equal(
      (await onA.status()).requests,
      requestsOnA + 1,
      'A was not asked again (the one request is this status)',
    );
    // Once the copy is deleted, migrate copies afresh.
    await onB.delete(first);
    const again = await onB.migrate(id);
    assert.notEqual(again, first);
    assert.deepEqual(await onB.get(again), await onA.get(id));
  });

  it('get with fetch copies a remote object and resolves it; a local object migrates to itself', async () => {
    const id = await onA.put({ message: 'from A', values: [1, 2, 3] });
    assert.deepEqual(await onB.get(id, { fetch: true }), { message: 'from A', values: [1, 2, 3] });
    const bytes = Buffer.from('bytes from A');
    const blob = await onA.put(bytes);
    assert.ok(((await onB.get(blob, { fetch: true })) as Buffer).equals(bytes));
    const mine = await onB.put('already here');
    assert.equal(await onB.migrate(mine), mine);
    assert.equal(await onB.get(mine, { fetch: true }), 'already here');
  });

  it('concurrent migrates of one object make one copy', async () => {
    const id = await onA.put(Buffer.alloc(8 * 1024 * 1024, 7));
    const before = await onB.status();
    const copies = await Promise.all([onB.migrate(id), onB.migrate(id), onB.migrate(id)]);
    assert.equal(new Set(copies).size, 1);
    assert.equal((await onB.status()).memoryUsage - before.memoryUsage, 8 * 1024 * 1024);
  });

  it('errors: an object its owner does not have, an instance nobody knows, a bad ref', async () => {
    await expectRejects(onB.migrate('o0001ffffffffffff'), 'ObjectNotFound', /object o0001ffffffffffff does not exist/);
    await expectRejects(
      onB.migrate('o0007000000000001'),
      'Unavailable',
      /instance 7 is unknown here.*--rpc-peer 7=HOST:PORT/,
    );
    await expectRejects(onB.migrate('o0002ffffffffffff'), 'ObjectNotFound', /o0002ffffffffffff does not exist/);
    await expectRejects(onB.migrate('no/such/name'), 'NameNotFound', /no\/such\/name/);
  });

  it('putGlobal: an object over partitions on both daemons lists them all and fetches what is asked', async () => {
    const parts = [new Float64Array([1, 2]), new Float64Array([3, 4, 5])];
    const remoteIds = await Promise.all(parts.map((part) => onA.put(part)));
    const localId = await onB.put(new Float64Array([6]));
    const global = await onB.putGlobal(
      'demo::Partitioned',
      [...remoteIds, localId],
      { rows: 6 },
      { name: 'demo/global' },
    );

    const meta = await onB.getMeta('demo/global');
    assert.equal(meta.id, global);
    assert.equal(meta.typename, 'demo::Partitioned');
    assert.deepEqual(meta.fields, { rows: 6 });
    assert.deepEqual(Object.keys(meta.members), ['p0', 'p1', 'p2']);
    assert.deepEqual(
      Object.values(meta.members).map((member) => [member.id, member.instanceId]),
      [
        [remoteIds[0], a.instanceId],
        [remoteIds[1], a.instanceId],
        [localId, b.instanceId],
      ],
    );
    assert.equal(meta.nbytes, 6 * 8);

    const handle = await onB.getObject(global);
    const fetched = await Promise.all(
      handle.memberKeys().map((key) => onB.get(handle.member(key).id, { fetch: true })),
    );
    assert.deepEqual(
      fetched.map((part) => [...(part as Float64Array)]),
      [[1, 2], [3, 4, 5], [6]],
    );

    // A deep delete takes the local partition with it (nothing else refers to it); the remote
    // ones belong to their own daemon and stay.
    await onB.dropName('demo/global');
    await onB.delete(global);
    assert.equal(await onB.exists(localId), false);
    assert.ok(await onA.exists(remoteIds[0]));
    assert.ok(await onA.exists(remoteIds[1]));
    await expectRejects(
      onB.putGlobal('demo::Partitioned', ['o0001ffffffffffff']),
      'ObjectNotFound',
      /o0001ffffffffffff does not exist/,
    );
  });

  it('a migrate during the start-up reservation waits for it, not making a segment of its own', async function () {
    const id = await onA.put(Buffer.alloc(64 * 1024, 9));
    // A first standard segment of 256 MiB: new memory takes a while to reserve on a VM.
    const c = await startTestDaemon([
      '--rpc-port',
      '0',
      '--instance-id',
      '3',
      '--size',
      '2GiB',
      '--rpc-peer',
      `1=${a.rpcEndpoint}`,
    ]);
    const onC = await connect(c.socket);
    try {
      if ((await onC.status()).segments !== 0) {
        console.log('      (skipped: the first segment was reserved before the migrate could be sent)');
        this.skip();
      }
      const copy = await onC.migrate(id);
      assert.deepEqual(await onC.get(copy), Buffer.alloc(64 * 1024, 9));
      const status = await onC.status();
      assert.equal(status.segments, 1, 'the copy went into the first standard segment');
      assert.equal(status.memoryReserved, 256 * 1024 * 1024);
    } finally {
      await onC.close();
      await c.stop();
    }
  });
});
