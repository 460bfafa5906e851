import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tableFromArrays } from 'apache-arrow';
import { connect, ShareableList, type TrellisClient } from '../../src/index';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';
import { expectRejects } from '../fixtures/trellis-errors';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('durability: --data-dir keeps persisted objects, names and ttls across restarts', function () {
  let dataDir: string;
  let daemon: TestDaemon;
  let client: TrellisClient;

  const start = async (extra: string[] = []) => {
    daemon = await startTestDaemon(['--size', '128MiB', '--data-dir', dataDir, ...extra]);
    client = await connect(daemon.socket);
  };
  const restart = async (signal: NodeJS.Signals = 'SIGTERM') => {
    await client.close();
    if (signal === 'SIGKILL') daemon.process.kill('SIGKILL');
    await daemon.stop();
    await start();
  };

  beforeEach(async () => {
    dataDir = tempPath('data');
    await start();
  });
  afterEach(async () => {
    await client.close();
    await daemon.stop();
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`serves every built-in type persisted before a ${signal}, under the same ids, with names`, async () => {
      const table = tableFromArrays({ id: Int32Array.from([1, 2, 3]), score: Float64Array.from([0.5, 1.5, 2.5]) });
      const list = await ShareableList.create(client, ['a', 12, 3.5, true, null, Buffer.from('xyz')]);
      await list.freeze();
      const blob = Buffer.alloc(300_000, 9);
      const values: Record<string, unknown> = {
        value: { text: 'kept', n: [1, 2, 3] },
        blob,
        small: Buffer.from('tiny'),
        tensor: new Float64Array([1, 2, 3, 4]),
        table,
      };
      const ids: Record<string, string> = {};
      for (const [name, value] of Object.entries(values))
        ids[name] = await client.put(value, { name: `kept/${name}`, persist: true });
      await client.persist(list.name);
      await client.putName(list.name, 'kept/list');
      const lost = await client.put('not persisted', { name: 'lost/value' });

      await restart(signal);
      assert.deepEqual(await client.get(ids.value), values.value);
      assert.ok(((await client.get(ids.blob)) as Buffer).equals(blob));
      assert.ok(((await client.get('kept/small')) as Buffer).equals(Buffer.from('tiny')));
      assert.deepEqual(await client.get('kept/tensor'), values.tensor);
      const gotTable = (await client.get('kept/table')) as typeof table;
      assert.deepEqual(
        gotTable.toArray().map((row) => row.toJSON()),
        table.toArray().map((row) => row.toJSON()),
      );
      const reopened = await ShareableList.open(client, list.name);
      assert.deepEqual(reopened.toArray(), ['a', 12, 3.5, true, null, Buffer.from('xyz')]);
      for (const [name, id] of Object.entries(ids)) assert.equal(await client.getName(`kept/${name}`), id);
      assert.equal(await client.exists(lost), false);
      await expectRejects(client.getName('lost/value'), 'NameNotFound', /lost\/value/);
      const meta = await client.getMeta(ids.blob);
      assert.equal(meta.persisted, true);
    });
  }

  it('every persist that resolved before a SIGKILL is whole after the restart', async () => {
    const writer = startChild('persist-loop.ts', [daemon.socket]);
    const resolved: Array<{ id: string; sha: string }> = [];
    while (resolved.length < 30) resolved.push(await writer.next<{ id: string; sha: string }>());
    daemon.process.kill('SIGKILL');
    await writer.exited;
    // Whatever it reported before the kill was acknowledged: all of it must come back whole.
    await restart();
    for (const { id, sha: expected } of resolved) {
      const got = await client.getBlob(id);
      assert.equal(sha(got.buffer), expected, `blob ${id} is whole`);
    }
  });

  it('refuses bad ttls with InvalidArgument naming ttl', async () => {
    const id = await client.put('v');
    for (const ttl of [0, -1, Number.NaN, 'soon']) {
      await expectRejects(client.persist(id, { ttl: ttl as number }), 'InvalidArgument', /ttl/);
    }
  });

  it('expiry takes the object and its names from memory and disk, also while the daemon is down', async () => {
    const soon = await client.put(Buffer.alloc(100_000, 1), { name: 'ttl/soon', persist: true });
    await client.persist(soon, { ttl: 1 });
    const meta = await client.getMeta(soon);
    assert.ok(typeof meta.expiresAt === 'number' && meta.expiresAt > Date.now());
    await sleep(1500);
    await expectRejects(client.getName('ttl/soon'), 'NameNotFound', /ttl\/soon/);
    assert.equal(await client.exists(soon), false);

    const later = await client.put(Buffer.alloc(100_000, 2), { name: 'ttl/later', persist: true });
    await client.persist(later, { ttl: 2 });
    await client.close();
    await daemon.stop();
    await sleep(2200);
    await start();
    assert.equal(await client.exists(later), false, 'expired while the daemon was down');
    await expectRejects(client.getName('ttl/later'), 'NameNotFound', /ttl\/later/);
    // Nothing of either is left on disk.
    await restart();
    assert.equal(await client.exists(soon), false);
    const files = fs.readdirSync(dataDir, { recursive: true }) as string[];
    assert.ok(!files.some((file) => file.includes(soon) || file.includes(later)), `no file left: ${files.join(', ')}`);
  });

  it('a second daemon on the same dir refuses to start, naming it; the first serves on', async () => {
    const id = await client.put('first', { persist: true });
    await assert.rejects(startTestDaemon(['--data-dir', dataDir], 10_000), (error: Error) => {
      assert.match(error.message, new RegExp(dataDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
      return true;
    });
    assert.equal(await client.get(id), 'first');
  });

  it('a blob file changed on disk is IOError on load, naming the object; others still load', async () => {
    const big = await client.put(Buffer.alloc(200_000, 5), { persist: true });
    const other = await client.put(Buffer.alloc(200_000, 6), { persist: true });
    await client.close();
    await daemon.stop();
    const files = (fs.readdirSync(dataDir, { recursive: true }) as string[]).filter((file) => file.includes(big));
    assert.equal(files.length, 1, `one file for ${big}: ${files.join(', ')}`);
    const file = path.join(dataDir, files[0]);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 1000);
    fs.closeSync(fd);
    await start();
    await expectRejects(client.get(big), 'IOError', new RegExp(big));
    assert.ok(((await client.get(other)) as Buffer).equals(Buffer.alloc(200_000, 6)));
    assert.equal(await client.get(await client.put('still serving')), 'still serving');
  });

  it('under memory pressure a persisted blob leaves memory without a second write, and loads back', async () => {
    const MiB = 1024 * 1024;
    const kept = await client.put(Buffer.alloc(40 * MiB, 4), { persist: true });
    await client.release(kept);
    for (let i = 0; i < 3; i++) await client.release(await client.put(Buffer.alloc(40 * MiB, 10 + i)));
    assert.equal(
      (await client.getMeta(kept)).resident,
      false,
      'the persisted blob left memory first (least recently used)',
    );
    const spilled = fs.readdirSync(path.join(dataDir, 'spill'));
    assert.ok(!spilled.some((file) => file.includes(kept)), `no spill file for it: ${spilled.join(', ')}`);
    assert.ok(((await client.get(kept)) as Buffer).equals(Buffer.alloc(40 * MiB, 4)));
  });

  it('a full disk during persist is IOError; the object stays in memory and the daemon serves on', async function () {
    if (process.getuid?.() !== 0) this.skip();
    await client.close();
    await daemon.stop();
    dataDir = tempPath('small-data');
    fs.mkdirSync(dataDir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dataDir]);
    } catch {
      this.skip();
    }
    try {
      await start();
      const fits = await client.put(Buffer.alloc(1_000_000, 1), { persist: true });
      const id = await client.put(Buffer.alloc(16 * 1024 * 1024, 3));
      await expectRejects(client.persist(id), 'IOError', /./);
      assert.ok(((await client.get(id)) as Buffer).equals(Buffer.alloc(16 * 1024 * 1024, 3)), 'still in memory');
      assert.equal((await client.getMeta(id)).persisted, false);
      await restart();
      assert.ok(
        ((await client.get(fits)) as Buffer).equals(Buffer.alloc(1_000_000, 1)),
        'what was persisted before is whole',
      );
      assert.equal(await client.exists(id), false);
    } finally {
      await client.close();
      await daemon.stop();
      execFileSync('umount', ['--lazy', dataDir]);
      dataDir = tempPath('data');
      await start();
    }
  });
});
