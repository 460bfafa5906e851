import * as assert from 'node:assert/strict';
import { connect, ShareableList, type TrellisClient } from '../../src/index';
import { generatedTable } from '../fixtures/arrow-tables';
import { startChildClient, type ChildClient } from '../fixtures/cluster-daemons';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';
import { expectRejects } from '../fixtures/trellis-errors';

describe('labels and lineage', function () {
  this.timeout(60_000);
  let daemon: TestDaemon;
  let client: TrellisClient;
  let other: ChildClient;
  before(async () => {
    daemon = await startTestDaemon(['--size', '128MiB']);
    client = await connect(daemon.socket);
    other = await startChildClient(daemon.socket);
  });
  after(async () => {
    other.child.kill();
    await client.close();
    await daemon.stop();
  });

  describe('labels', () => {
    const values: Record<string, () => unknown | Promise<unknown>> = {
      Buffer: () => Buffer.from('bytes'),
      TypedArray: () => new Float32Array([1, 2, 3]),
      Table: () => generatedTable(100, 3, 1),
      'Value (inline)': () => ({ small: true }),
      'Value (in a blob)': () => ({ rows: Array.from({ length: 20_000 }, (_, i) => `row ${i}`) }),
      Sequence: () => [Buffer.from('a'), new Int32Array([1])],
      ShareableList: () => ShareableList.create(client, ['a', 1, true]),
      'frozen ShareableList': async () => {
        const list = await ShareableList.create(client, ['b', 2]);
        await list.freeze();
        return list;
      },
    };
    for (const [kind, make] of Object.entries(values)) {
      it(`put keeps the labels of a ${kind}`, async () => {
        const id = await client.put(await make(), { labels: { kind, team: 'blue' } });
        assert.deepEqual((await client.getMeta(id)).labels, { kind, team: 'blue' });
      });
    }

    it('a put of a Buffer with labels and a name is one request', async () => {
      const before = (await client.status()).requests;
      const id = await client.put(Buffer.from('one trip'), { name: 'labels/one-trip', labels: { a: '1' } });
      // putBlobs (the bytes inline), and the status call itself.
      assert.equal((await client.status()).requests - before, 2);
      assert.deepEqual((await client.getMeta('labels/one-trip')).labels, { a: '1' });
      await client.delete(id, { force: true });
    });

    it('label() merges and removes, seen by another process in getMeta and listObjects({ labels })', async () => {
      const id = await client.put(Buffer.from('label me'), { labels: { stage: 'raw', old: 'x' } });
      const labels = await client.label(id, { stage: 'cooked', owner: 'ann', old: null });
      assert.deepEqual(labels, { stage: 'cooked', owner: 'ann' });
      const meta = await other.call<{ labels: Record<string, string> }>('getMeta', id);
      assert.deepEqual(meta.labels, { stage: 'cooked', owner: 'ann' });
      const found = await other.call<Array<{ id: string }>>('listObjects', {
        labels: { stage: 'cooked', owner: 'ann' },
      });
      assert.deepEqual(
        found.map((o) => o.id),
        [id],
      );
      assert.deepEqual(await other.call('listObjects', { labels: { stage: 'raw' } }), []);
      // The bytes are as they were.
      assert.equal((await client.get(id)).toString(), 'label me');
    });

    it('label() by name, and the topHash of an export does not change', async () => {
      const id = await client.put({ x: [1, 2, 3] }, { name: 'labels/exported', labels: { v: '1' } });
      const before = await client.exportArchive(id, tempPath('labels-before'));
      await client.label('labels/exported', { v: '2', extra: 'yes' });
      const after = await client.exportArchive(id, tempPath('labels-after'));
      assert.equal(after.topHash, before.topHash);
      assert.deepEqual((await client.getMeta(id)).labels, { v: '2', extra: 'yes' });
    });

    it('refuses bad labels with InvalidArgument naming the label', async () => {
      const id = await client.put('v');
      await expectRejects(
        client.label(id, { n: 5 as unknown as string }),
        'InvalidArgument',
        /label "n" must map to a string \(or null/,
      );
      await expectRejects(
        client.put(Buffer.from('x'), { labels: { big: 'x'.repeat(5000) } }),
        'InvalidArgument',
        /label "big" must map to a string of at most 4096/,
      );
      await expectRejects(
        client.put('x', { labels: { '': 'empty' } }),
        'InvalidArgument',
        /label "": a key is 1 to 256 characters/,
      );
      await expectRejects(client.label(id, {}), 'InvalidArgument', /at least one label/);
      await expectRejects(client.label('o00000000000ffff1', { a: 'b' }), 'ObjectNotFound', /o00000000000ffff1/);
    });
  });

  describe('lineage', () => {
    it('records parents by id (with name and version when given by name), shown in getMeta', async () => {
      const raw = await client.put({ step: 'raw' }, { name: 'lineage/raw' });
      const other = await client.put(Buffer.from('side input'));
      const cooked = await client.put(new Float64Array([1, 2]), { parents: ['lineage/raw', other, raw] });
      assert.deepEqual((await client.getMeta(cooked)).parents, [
        { id: raw, name: 'lineage/raw', version: 1 },
        { id: other },
      ]);
      assert.deepEqual((await client.getMeta(raw)).parents, []);
    });

    it('walks breadth first, each object once, up to maxDepth', async () => {
      const a = await client.put('a');
      const b = await client.put('b', { parents: [a] });
      const c = await client.put(Buffer.from('c'), { parents: [a, b] });
      const d = await client.createMetadata({ typename: 'test::Thing', members: {} }, { parents: [c] });
      const full = await client.lineage(d);
      assert.deepEqual(
        full.map((e) => [e.depth, e.id, e.typename, e.missing]),
        [
          [0, d, 'test::Thing', false],
          [1, c, 'trellis::Blob', false],
          [2, a, 'trellis::Value', false],
          [2, b, 'trellis::Value', false],
        ],
      );
      assert.deepEqual(
        (await client.lineage(d, { maxDepth: 1 })).map((e) => e.id),
        [d, c],
      );
      assert.deepEqual(
        (await client.lineage(d, { maxDepth: 0 })).map((e) => e.id),
        [d],
      );
    });

    it('the object itself, looked up by name, carries the name and the version it resolved to', async () => {
      const first = await client.put({ v: 1 }, { name: 'lineage/versioned' });
      const second = await client.put({ v: 2 }, { parents: [first] });
      assert.equal(await client.putName(second, 'lineage/versioned', { override: true }), 2);
      assert.deepEqual((await client.lineage('lineage/versioned', { maxDepth: 0 }))[0], {
        depth: 0,
        id: second,
        typename: 'trellis::Value',
        name: 'lineage/versioned',
        version: 2,
        missing: false,
      });
      assert.equal((await client.lineage(second, { maxDepth: 0 }))[0].version, undefined, 'by id: no version');
    });

    it('a parent deleted since is missing, with typename null; deleting a parent is allowed', async () => {
      const parent = await client.put({ gone: 'soon' });
      const child = await client.put({ child: true }, { parents: [parent], name: 'lineage/orphan' });
      await client.delete(parent);
      assert.deepEqual(await other.call('lineage', 'lineage/orphan'), [
        { depth: 0, id: child, typename: 'trellis::Value', name: 'lineage/orphan', version: 1, missing: false },
        { depth: 1, id: parent, typename: null, missing: true },
      ]);
    });

    it('refuses a parent that does not exist', async () => {
      await expectRejects(
        client.put('x', { parents: ['lineage/no-such-name'] }),
        'NameNotFound',
        /lineage\/no-such-name/,
      );
      await expectRejects(
        client.put(Buffer.from('x'), { parents: ['o00000000000ffff2'] }),
        'ObjectNotFound',
        /parent o00000000000ffff2 does not exist/,
      );
    });

    it('travels in an exported archive and is recorded on import where the parent exists', async () => {
      const parent = await client.put({ source: 1 });
      const child = await client.put({ derived: 1 }, { parents: [parent] });
      const path = tempPath('lineage-archive');
      const { topHash } = await client.exportArchive(child, path);
      const plain = await client.exportArchive(await client.put({ derived: 1 }), tempPath('lineage-plain'));
      assert.equal(topHash, plain.topHash, 'parents are not hashed');
      const second = await startTestDaemon(['--size', '64MiB']);
      try {
        const there = await connect(second.socket);
        const imported = await there.importArchive(path);
        // The parent is not on the second daemon: nothing to record there.
        assert.deepEqual((await there.getMeta(imported.id)).parents, []);
        await there.close();
      } finally {
        await second.stop();
      }
      // Here the parent exists: an import of the deleted child records it again.
      await client.delete(child);
      const back = await client.importArchive(path);
      assert.equal(back.existed, false);
      assert.deepEqual((await client.getMeta(back.id)).parents, [{ id: parent }]);
    });
  });
});

describe('labels and lineage with --data-dir', function () {
  this.timeout(60_000);

  it('a persisted object keeps its parents and its changed labels across a restart', async () => {
    const dataDir = tempPath('labels-data');
    let daemon = await startTestDaemon(['--size', '64MiB', '--data-dir', dataDir]);
    let client = await connect(daemon.socket);
    const parent = await client.put({ source: true }, { persist: true });
    const blob = await client.put(Buffer.from('persisted bytes'), {
      persist: true,
      labels: { stage: 'raw', gone: 'x' },
      parents: [parent],
    });
    await client.label(blob, { stage: 'cooked', gone: null });
    await client.close();
    await daemon.stop();

    daemon = await startTestDaemon(['--size', '64MiB', '--data-dir', dataDir]);
    try {
      client = await connect(daemon.socket);
      const meta = await client.getMeta(blob);
      assert.deepEqual(meta.labels, { stage: 'cooked' });
      assert.deepEqual(meta.parents, [{ id: parent }]);
      assert.equal((await client.get(blob)).toString(), 'persisted bytes');
      assert.deepEqual(
        (await client.listObjects({ labels: { stage: 'cooked' } })).map((o) => o.id),
        [blob],
      );
      assert.deepEqual(
        (await client.lineage(blob)).map((e) => [e.id, e.missing]),
        [
          [blob, false],
          [parent, false],
        ],
      );
      await client.close();
    } finally {
      await daemon.stop();
    }
  });
});
