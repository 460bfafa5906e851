/**
 * The durable layer in a real daemon on a small tmpfs data dir: a label whose catalog write
 * fails (the disk is full) is all or nothing: IOError, and the object keeps its labels, in
 * memory as after a restart.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect, type TrellisClient } from '../../../src/index';
import { startTestDaemon, type TestDaemon } from '../../fixtures/daemon';
import { fillDisk, mountTmpfs, unmount } from '../../fixtures/tmpfs';

/** 63 labels of 4000 characters: a catalog write of about 256 KiB. */
const bigLabels = (tag: string) =>
  Object.fromEntries(Array.from({ length: 63 }, (_, i) => [`k${i}`, tag.repeat(4000)]));

describe('durable metadata on a full disk', function () {
  this.timeout(30_000);
  let mountPoint: string | undefined;
  let daemon: TestDaemon | undefined;
  let client: TrellisClient | undefined;

  beforeEach(function () {
    const mounted = mountTmpfs('8m');
    if ('reason' in mounted) {
      this.skip();
      return;
    }
    mountPoint = mounted.dir;
  });

  afterEach(async () => {
    await client?.close();
    await daemon?.stop();
    client = daemon = undefined;
    if (mountPoint !== undefined) unmount(mountPoint);
    mountPoint = undefined;
  });

  const start = async (dataDir: string) => {
    daemon = await startTestDaemon(['--size', '64MiB', '--data-dir', dataDir]);
    client = await connect(daemon.socket);
    return client;
  };

  it('a label whose catalog write fails leaves the labels as they were', async () => {
    const dataDir = path.join(mountPoint!, 'data');
    let c = await start(dataDir);
    const id = await c.put({ rows: 1 }, { persist: true, labels: { stage: 'raw' } });
    const filler = path.join(mountPoint!, 'filler');
    fillDisk(filler);
    await assert.rejects(c.label(id, { stage: 'cooked', ...bigLabels('x') }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'IOError', error.message);
      return true;
    });
    assert.deepEqual((await c.getMeta(id)).labels, { stage: 'raw' });
    assert.deepEqual(
      (await c.listObjects({ labels: { stage: 'cooked' } })).map((o) => o.id),
      [],
    );
    // With room again, a label works; after a restart the object has exactly those labels.
    fs.rmSync(filler);
    assert.deepEqual(await c.label(id, { stage: 'cooked' }), { stage: 'cooked' });
    await c.close();
    await daemon!.stop();
    c = await start(dataDir);
    assert.deepEqual((await c.getMeta(id)).labels, { stage: 'cooked' });
  });
});
