import * as assert from 'node:assert/strict';
import { DataDirDaemon } from '../fixtures/data-dir-daemon';

describe('name versions with --data-dir survive a restart', function () {
  const at = new DataDirDaemon(['--size', '64MiB', '--keep-versions', '4']);
  const restart = (signal: NodeJS.Signals) => at.restart(signal);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`keeps every version of persisted objects across a ${signal}, and numbering goes on`, async () => {
      const ids: string[] = [];
      for (let n = 1; n <= 3; n++) {
        const id = await at.client.put({ n }, { persist: true });
        ids.push(id);
        assert.equal(await at.client.putName(id, 'kept/history', { override: true }), n);
      }
      await at.client.dropVersion('kept/history', 2);
      const before = await at.client.versions('kept/history');
      assert.deepEqual(
        before.map((v) => [v.version, v.id]),
        [
          [3, ids[2]],
          [1, ids[0]],
        ],
      );
      await restart(signal);
      assert.deepEqual(await at.client.versions('kept/history'), before);
      assert.deepEqual(await at.client.get('kept/history', { version: 1 }), { n: 1 });
      await assert.rejects(at.client.delete(ids[0]), { code: 'Conflict' }, 'a kept version still pins its object');
      const next = await at.client.put({ n: 4 }, { persist: true });
      assert.equal(await at.client.putName(next, 'kept/history', { override: true, expectVersion: 3 }), 4);
      await restart(signal);
      assert.deepEqual(
        (await at.client.versions('kept/history')).map((v) => v.version),
        [4, 3, 1],
      );
    });
  }

  it("a dropped latest version's number is not given again after a restart", async () => {
    const ids = [];
    for (const n of [1, 2, 3]) ids.push(await at.client.put({ n }, { persist: true }));
    for (const id of ids) await at.client.putName(id, 'high-water', { override: true });
    await at.client.dropVersion('high-water', 3);
    await restart('SIGTERM');
    assert.deepEqual(
      (await at.client.versions('high-water')).map((v) => v.version),
      [2, 1],
    );
    assert.equal(await at.client.putName(ids[2], 'high-water', { override: true }), 4);
  });

  it('a forced delete of the latest object leaves the previous version latest after a restart', async () => {
    const a = await at.client.put('a', { persist: true });
    const b = await at.client.put('b', { persist: true });
    await at.client.putName(a, 'forced');
    await at.client.putName(b, 'forced', { override: true });
    await at.client.delete(b, { force: true });
    assert.equal(await at.client.getName('forced'), a);
    await restart('SIGTERM');
    assert.deepEqual(
      (await at.client.versions('forced')).map((v) => [v.version, v.id]),
      [[1, a]],
    );
  });
});
