/**
 * A client process stopped (SIGSTOP) while it holds references and has requests in flight
 * (issue 13, faults): the daemon must go on serving everyone else, must not wait on the
 * stopped client's socket, and once the client is killed must take back all it held.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from '../../src/index';
import { waitFor } from '../fixtures/cluster';
import { startTestDaemon } from '../fixtures/daemon';
import { fillPattern } from '../fixtures/pattern';
import { onCleanup } from '../fixtures/setup';
import { startWorker } from '../fixtures/worker';

const MiB = 1024 * 1024;

describe('a stopped client', function () {
  this.timeout(40_000);

  it('holding references with gets in flight: others are served; killed, all it held is released', async () => {
    const daemon = await startTestDaemon(['--size', '128MiB']);
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const baseline = await client.status();

    const stopped = await startWorker(daemon.socket);
    const held = (await stopped.run<{ id: string }>('put', { size: 16 * MiB, seed: 1 })).id;
    const shared = (await stopped.run<{ id: string }>('put', { size: 4 * MiB, seed: 2 })).id;
    await stopped.run('get', { id: held });
    await stopped.run('get', { id: shared });
    // Replies the stopped client will not read: gets of a blob (each sends an fd) and a name wait.
    await stopped.run('inFlight', { id: shared, count: 64, name: 'stopped/waits-for' });
    stopped.child.kill('SIGSTOP');
    onCleanup(() => stopped.child.process.signalCode === null && stopped.child.kill('SIGCONT'));

    // Everyone else is served: puts, gets of what the stopped client holds, names, status.
    for (let round = 0; round < 20; round++) {
      const writer = await client.createBlob(MiB);
      fillPattern(writer.buffer, 100 + round);
      const id = await writer.seal();
      const blob = await client.getBlob(id);
      assert.equal(sha256(blob.buffer), sha256(writer.buffer));
      await client.release(id);
      await client.delete(id);
    }
    const expected = Buffer.alloc(4 * MiB);
    fillPattern(expected, 2);
    assert.equal(sha256((await client.getBlob(shared)).buffer), sha256(expected));
    await client.release(shared);
    // The name the stopped client waits for: publishing it answers a client that cannot read.
    await client.putName(shared, 'stopped/waits-for');
    assert.equal(await client.getName('stopped/waits-for'), shared);
    await client.dropName('stopped/waits-for');

    // Deleting what it holds (API.md): gone from the view at once; the bytes wait for its holder.
    const before = await client.status();
    await client.delete([held, shared]);
    assert.equal(await client.exists(held), false);
    await assert.rejects(client.getBlob(held), { code: 'ObjectNotFound' });
    const deleted = await client.status();
    assert.equal(deleted.deferredFrees, 2, 'the stopped client still maps both');
    assert.equal(deleted.memoryUsage, before.memoryUsage, 'bytes a client maps are not reused under it');

    stopped.child.kill('SIGKILL');
    assert.equal(await stopped.child.exited, 'SIGKILL');
    await waitFor(
      'the daemon to take back what the killed client held',
      async () => {
        const now = await client.status();
        return now.clients === baseline.clients && now.deferredFrees === 0 && now.memoryUsage === baseline.memoryUsage;
      },
      5_000,
    );
    assert.equal((await client.status()).objects, baseline.objects);
  });
});

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
