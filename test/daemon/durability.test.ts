import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tableFromArrays } from 'apache-arrow';
import { ShareableList } from '../../src/index';
import { startChild } from '../fixtures/child';
import { DataDirDaemon } from '../fixtures/data-dir-daemon';
import { startTestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';
import { expectRejects } from '../fixtures/trellis-errors';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('durability: --data-dir keeps persisted objects, names and ttls across restarts', function () {
  const at = new DataDirDaemon(['--size', '128MiB']);
  const start = () => at.start();
  const restart = (signal?: NodeJS.Signals) => at.restart(signal);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`serves every built-in type persisted before a ${signal}, under the same ids, with names`, async () => {
      const table = tableFromArrays({ id: Int32Array.from([1, 2, 3]), score: Float64Array.from([0.5, 1.5, 2.5]) });
      const list = await ShareableList.create(at.client, ['a', 12, 3.5, true, null, Buffer.from('xyz')]);
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
        ids[name] = await at.client.put(value, { name: `kept/${name}`, persist: true });
      await at.client.persist(list.name);
      await at.client.putName(list.name, 'kept/list');
      const lost = await at.client.put('not persisted', { name: 'lost/value' });

      await restart(signal);
      assert.deepEqual(await at.client.get(ids.value), values.value);
      assert.ok(((await at.client.get(ids.blob)) as Buffer).equals(blob));
      assert.ok(((await at.client.get('kept/small')) as Buffer).equals(Buffer.from('tiny')));
      assert.deepEqual(await at.client.get('kept/tensor'), values.tensor);
      const gotTable = (await at.client.get('kept/table')) as typeof table;
      assert.deepEqual(
        gotTable.toArray().map((row) => row.toJSON()),
        table.toArray().map((row) => row.toJSON()),
      );
      const reopened = await ShareableList.open(at.client, list.name);
      assert.deepEqual(reopened.toArray(), ['a', 12, 3.5, true, null, Buffer.from('xyz')]);
      for (const [name, id] of Object.entries(ids)) assert.equal(await at.client.getName(`kept/${name}`), id);
      assert.equal(await at.client.exists(lost), false);
      await expectRejects(at.client.getName('lost/value'), 'NameNotFound', /lost\/value/);
      const meta = await at.client.getMeta(ids.blob);
      assert.equal(meta.persisted, true);
    });
  }

  it('every persist that resolved before a SIGKILL is whole after the restart', async () => {
    const writer = startChild('persist-loop.ts', [at.daemon.socket]);
    const resolved: Array<{ id: string; sha: string }> = [];
    while (resolved.length < 30) resolved.push(await writer.next<{ id: string; sha: string }>());
    at.daemon.process.kill('SIGKILL');
    await writer.exited;
    // Whatever it reported before the kill was acknowledged: all of it must come back whole.
    await restart();
    for (const { id, sha: expected } of resolved) {
      const got = await at.client.getBlob(id);
      assert.equal(sha(got.buffer), expected, `blob ${id} is whole`);
    }
  });

  it('refuses bad ttls with InvalidArgument naming ttl', async () => {
    const id = await at.client.put('v');
    for (const ttl of [0, -1, Number.NaN, 'soon']) {
      await expectRejects(at.client.persist(id, { ttl: ttl as number }), 'InvalidArgument', /ttl/);
    }
  });

  it('expiry takes the object and its names from memory and disk, also while the daemon is down', async () => {
    const soon = await at.client.put(Buffer.alloc(100_000, 1), { name: 'ttl/soon', persist: true });
    await at.client.persist(soon, { ttl: 1 });
    const meta = await at.client.getMeta(soon);
    assert.ok(typeof meta.expiresAt === 'number' && meta.expiresAt > Date.now());
    await sleep(1500);
    await expectRejects(at.client.getName('ttl/soon'), 'NameNotFound', /ttl\/soon/);
    assert.equal(await at.client.exists(soon), false);

    const later = await at.client.put(Buffer.alloc(100_000, 2), { name: 'ttl/later', persist: true });
    await at.client.persist(later, { ttl: 2 });
    await at.client.close();
    await at.daemon.stop();
    await sleep(2200);
    await start();
    assert.equal(await at.client.exists(later), false, 'expired while the daemon was down');
    await expectRejects(at.client.getName('ttl/later'), 'NameNotFound', /ttl\/later/);
    // Nothing of either is left on disk.
    await restart();
    assert.equal(await at.client.exists(soon), false);
    const files = fs.readdirSync(at.dataDir, { recursive: true }) as string[];
    assert.ok(!files.some((file) => file.includes(soon) || file.includes(later)), `no file left: ${files.join(', ')}`);
  });

  it('a second daemon on the same dir refuses to start, naming it; the first serves on', async () => {
    const id = await at.client.put('first', { persist: true });
    await assert.rejects(startTestDaemon(['--data-dir', at.dataDir], 10_000), (error: Error) => {
      assert.match(error.message, new RegExp(at.dataDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
      return true;
    });
    assert.equal(await at.client.get(id), 'first');
  });

  it('a blob file changed on disk is IOError on load, naming the object; others still load', async () => {
    const big = await at.client.put(Buffer.alloc(200_000, 5), { persist: true });
    const other = await at.client.put(Buffer.alloc(200_000, 6), { persist: true });
    await at.client.close();
    await at.daemon.stop();
    const files = (fs.readdirSync(at.dataDir, { recursive: true }) as string[]).filter((file) => file.includes(big));
    assert.equal(files.length, 1, `one file for ${big}: ${files.join(', ')}`);
    const file = path.join(at.dataDir, files[0]);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 1000);
    fs.closeSync(fd);
    await start();
    await expectRejects(at.client.get(big), 'IOError', new RegExp(big));
    assert.ok(((await at.client.get(other)) as Buffer).equals(Buffer.alloc(200_000, 6)));
    assert.equal(await at.client.get(await at.client.put('still serving')), 'still serving');
  });

  it('under memory pressure a persisted blob leaves memory without a second write, and loads back', async () => {
    const MiB = 1024 * 1024;
    const kept = await at.client.put(Buffer.alloc(40 * MiB, 4), { persist: true });
    await at.client.release(kept);
    for (let i = 0; i < 3; i++) await at.client.release(await at.client.put(Buffer.alloc(40 * MiB, 10 + i)));
    assert.equal(
      (await at.client.getMeta(kept)).resident,
      false,
      'the persisted blob left memory first (least recently used)',
    );
    const spilled = fs.readdirSync(path.join(at.dataDir, 'spill'));
    assert.ok(!spilled.some((file) => file.includes(kept)), `no spill file for it: ${spilled.join(', ')}`);
    assert.ok(((await at.client.get(kept)) as Buffer).equals(Buffer.alloc(40 * MiB, 4)));
  });

  it('a full disk during persist is IOError; the object stays in memory and the daemon serves on', async function () {
    if (process.getuid?.() !== 0) this.skip();
    await at.client.close();
    await at.daemon.stop();
    at.dataDir = tempPath('small-data');
    fs.mkdirSync(at.dataDir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', at.dataDir]);
    } catch {
      this.skip();
    }
    try {
      await start();
      const fits = await at.client.put(Buffer.alloc(1_000_000, 1), { persist: true });
      const id = await at.client.put(Buffer.alloc(16 * 1024 * 1024, 3));
      await expectRejects(at.client.persist(id), 'IOError', /./);
      assert.ok(((await at.client.get(id)) as Buffer).equals(Buffer.alloc(16 * 1024 * 1024, 3)), 'still in memory');
      assert.equal((await at.client.getMeta(id)).persisted, false);
      await restart();
      assert.ok(
        ((await at.client.get(fits)) as Buffer).equals(Buffer.alloc(1_000_000, 1)),
        'what was persisted before is whole',
      );
      assert.equal(await at.client.exists(id), false);
    } finally {
      await at.client.close();
      await at.daemon.stop();
      execFileSync('umount', ['--lazy', at.dataDir]);
      at.dataDir = tempPath('data');
      await start();
    }
  });
});
