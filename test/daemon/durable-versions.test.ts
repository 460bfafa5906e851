import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';

describe('name versions with --data-dir survive a restart', function () {
  let dataDir: string;
  let daemon: TestDaemon;
  let client: TrellisClient;
  const start = async () => {
    daemon = await startTestDaemon(['--size', '64MiB', '--data-dir', dataDir, '--keep-versions', '4']);
    client = await connect(daemon.socket);
  };
  const restart = async (signal: NodeJS.Signals) => {
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
    it(`keeps every version of persisted objects across a ${signal}, and numbering goes on`, async () => {
      const ids: string[] = [];
      for (let n = 1; n <= 3; n++) {
        const id = await client.put({ n }, { persist: true });
        ids.push(id);
        assert.equal(await client.putName(id, 'kept/history', { override: true }), n);
      }
      await client.dropVersion('kept/history', 2);
      const before = await client.versions('kept/history');
      assert.deepEqual(
        before.map((v) => [v.version, v.id]),
        [
          [3, ids[2]],
          [1, ids[0]],
        ],
      );
      await restart(signal);
      assert.deepEqual(await client.versions('kept/history'), before);
      assert.deepEqual(await client.get('kept/history', { version: 1 }), { n: 1 });
      await assert.rejects(client.delete(ids[0]), { code: 'Conflict' }, 'a kept version still pins its object');
      const next = await client.put({ n: 4 }, { persist: true });
      assert.equal(await client.putName(next, 'kept/history', { override: true, expectVersion: 3 }), 4);
      await restart(signal);
      assert.deepEqual(
        (await client.versions('kept/history')).map((v) => v.version),
        [4, 3, 1],
      );
    });
  }

  it("a dropped latest version's number is not given again after a restart", async () => {
    const ids = [];
    for (const n of [1, 2, 3]) ids.push(await client.put({ n }, { persist: true }));
    for (const id of ids) await client.putName(id, 'high-water', { override: true });
    await client.dropVersion('high-water', 3);
    await restart('SIGTERM');
    assert.deepEqual(
      (await client.versions('high-water')).map((v) => v.version),
      [2, 1],
    );
    assert.equal(await client.putName(ids[2], 'high-water', { override: true }), 4);
  });

  it('a forced delete of the latest object leaves the previous version latest after a restart', async () => {
    const a = await client.put('a', { persist: true });
    const b = await client.put('b', { persist: true });
    await client.putName(a, 'forced');
    await client.putName(b, 'forced', { override: true });
    await client.delete(b, { force: true });
    assert.equal(await client.getName('forced'), a);
    await restart('SIGTERM');
    assert.deepEqual(
      (await client.versions('forced')).map((v) => [v.version, v.id]),
      [[1, a]],
    );
  });
});
