import * as assert from 'node:assert/strict';
import { connect } from '../../src/index';
import { DataDirDaemon } from '../fixtures/data-dir-daemon';
import { pause } from '../fixtures/pause';

const MiB = 1024 * 1024;

describe('a request that finishes after its client left', () => {
  const store = new DataDirDaemon([]);

  it('takes no reference for it: a get whose bytes were still loading from disk', async () => {
    const bytes = Buffer.alloc(16 * MiB, 7);
    const id = await store.client.put(bytes, { persist: true });
    await store.restart(); // the object's bytes stay on disk until a get loads them
    const leaving = await connect(store.daemon.socket);
    await leaving.status(); // the fd channel is attached: the get goes straight to the load
    const resume = pause(store.daemon.process);
    const got = leaving.get(id);
    got.catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve)); // the request is in the daemon's socket
    await leaving.close();
    resume(); // the daemon reads the get, starts the load, then sees the client gone
    await assert.rejects(got, { code: 'ConnectionClosed' });
    const { client } = store;
    const deadline = Date.now() + 15_000;
    while ((await client.status()).spilled.objects > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal((await client.status()).spilled.objects, 0, 'the load finished');
    // Nobody holds it: a delete frees its memory at once.
    await client.delete(id);
    const after = await client.status();
    assert.equal(after.deferredFrees, 0, 'no free waits for a departed client');
    assert.equal(after.memoryUsage, 0);
  });
});
