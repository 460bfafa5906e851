import * as assert from 'node:assert/strict';
import { connect, type Client } from '../../src/index';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { patternHash } from '../fixtures/pattern';
import { onCleanup } from '../fixtures/setup';
import { settledStatus } from '../fixtures/status';
import { startWorker } from '../fixtures/worker';

const MiB = 1024 * 1024;

async function observer(daemon: TestDaemon): Promise<Client> {
  const client = await connect(daemon.socket);
  onCleanup(() => client.close());
  return client;
}

describe('blobs shared between processes', function () {
  let daemon: TestDaemon;
  beforeEach(async () => {
    daemon = await startTestDaemon(['--size', '64MiB']);
  });

  it('process B reads the bytes process A sealed, and the memory is counted once', async () => {
    const [writer, reader] = await Promise.all([startWorker(daemon.socket), startWorker(daemon.socket)]);
    const { id } = await writer.run<{ id: string }>('put', { size: 3 * MiB + 5, seed: 42 });
    const got = await reader.run<{ size: number; sha256: string; shared: boolean }>('get', { id });
    assert.equal(got.size, 3 * MiB + 5);
    assert.equal(got.sha256, patternHash(3 * MiB + 5, 42));
    assert.equal(got.shared, true, 'the reader sees a view of shared memory');
    const status = await (await observer(daemon)).status();
    assert.equal(status.memoryUsage, 3 * MiB + 64, 'one copy, rounded up to the 64-byte block');
    assert.equal(status.objects, 1);
  });

  it('blobs before, across and after the edge of a 16 MiB read window read back exactly in another process', async () => {
    const [writer, reader] = await Promise.all([startWorker(daemon.socket), startWorker(daemon.socket)]);
    // A 30 MiB segment, emptied and kept: the 15 MiB blob goes at its start and the 10 MiB one
    // after it, across 16 MiB; the small one goes to a small segment.
    const { id: spacer } = await writer.run<{ id: string }>('put', { size: 30 * MiB, seed: 9 });
    await writer.run('delete', { id: spacer });
    const sizes = [15 * MiB, 10 * MiB, 1000];
    const ids: string[] = [];
    for (const [i, size] of sizes.entries())
      ids.push((await writer.run<{ id: string }>('put', { size, seed: 10 + i })).id);
    const straddling = await (await observer(daemon)).getBlob(ids[1]);
    assert.ok(straddling.buffer.buffer.byteLength > 16 * MiB, 'the setup puts the second blob across a window edge');
    for (const [i, size] of sizes.entries()) {
      const got = await reader.run<{ size: number; sha256: string; shared: boolean }>('get', { id: ids[i] });
      assert.equal(got.sha256, patternHash(size, 10 + i), `blob ${i} (${size} bytes)`);
      assert.equal(got.shared, true);
    }
  });

  it('an unsealed blob is invisible to others until it is sealed', async () => {
    const [writer, reader] = await Promise.all([startWorker(daemon.socket), startWorker(daemon.socket)]);
    const { id } = await writer.run<{ id: string }>('createUnsealed', { size: 1000, seed: 7 });
    const early = await reader.call('get', { id });
    assert.equal(early.ok, false);
    assert.equal(early.code, 'NotSealed');
    assert.match(early.message!, new RegExp(`${id} is not sealed`));
    await writer.run('seal', { id });
    const late = await reader.run<{ sha256: string }>('get', { id });
    assert.equal(late.sha256, patternHash(1000, 7));
  });

  it('a process that writes into a sealed blob it got cannot change what others read', async () => {
    const [writer, vandal, reader] = await Promise.all([
      startWorker(daemon.socket),
      startWorker(daemon.socket),
      startWorker(daemon.socket),
    ]);
    const { id } = await writer.run<{ id: string }>('put', { size: 8192, seed: 3 });
    vandal.child.send({ op: 'scribble', id });
    await vandal.child.next(); // it has the view and is about to write
    const outcome = await Promise.race([vandal.child.exited, vandal.child.next().then(() => 'wrote')]);
    assert.equal(outcome, 'SIGSEGV', 'the read-only mapping faults on the first write');
    const after = await reader.run<{ sha256: string }>('get', { id });
    assert.equal(after.sha256, patternHash(8192, 3));
  });

  it('delete while another process holds the blob defers the free until it lets go', async () => {
    const [writer, holder] = await Promise.all([startWorker(daemon.socket), startWorker(daemon.socket)]);
    const watcher = await observer(daemon);
    const baseline = (await watcher.status()).memoryUsage;
    const { id } = await writer.run<{ id: string }>('put', { size: 2 * MiB, seed: 9 });
    await holder.run('get', { id });
    await writer.run('release', { id });
    await watcher.delete(id);
    assert.equal(await watcher.exists(id), false);
    await assert.rejects(watcher.getBlob(id), { code: 'ObjectNotFound', message: `object ${id} does not exist` });
    const during = await watcher.status();
    assert.equal(during.memoryUsage, baseline + 2 * MiB, 'still allocated while held');
    assert.equal(during.deferredFrees, 1);
    const reread = await holder.run<{ sha256: string }>('rehash', { id });
    assert.equal(reread.sha256, patternHash(2 * MiB, 9), 'the holder still reads the original bytes');
    await holder.run('release', { id });
    const after = await watcher.status();
    assert.equal(after.memoryUsage, baseline);
    assert.equal(after.deferredFrees, 0);
  });

  it('a client killed with SIGKILL leaks nothing and others are unaffected', async () => {
    const [victim, bystander] = await Promise.all([startWorker(daemon.socket), startWorker(daemon.socket)]);
    const watcher = await observer(daemon);
    const { id: kept } = await bystander.run<{ id: string }>('put', { size: 4096, seed: 1 });
    const baseline = (await watcher.status()).memoryUsage;

    await victim.run('createUnsealed', { size: MiB, seed: 2 });
    await victim.run('createUnsealed', { size: 10, seed: 3 });
    const { id: shared } = await bystander.run<{ id: string }>('put', { size: 2 * MiB, seed: 4 });
    await victim.run('get', { id: shared });
    await bystander.run('delete', { id: shared }); // deferred: the victim holds it
    assert.ok((await watcher.status()).memoryUsage > baseline);

    victim.child.kill('SIGKILL');
    await victim.child.exited;
    const status = await settledStatus(watcher, (s) => s.clients === 2);
    assert.equal(status.memoryUsage, baseline);
    assert.equal(status.deferredFrees, 0);
    assert.equal(status.clients, 2, 'the bystander and the watcher');
    const still = await bystander.run<{ sha256: string }>('get', { id: kept });
    assert.equal(still.sha256, patternHash(4096, 1));
  });

  it('OutOfMemory names the request and what is free, and the store still works after', async () => {
    const client = await observer(daemon);
    const small = await client.createBlob(1000);
    await small.seal();
    await assert.rejects(client.createBlob(65 * MiB), (error: Error & { code: string }) => {
      assert.equal(error.code, 'OutOfMemory');
      assert.match(error.message, /createBlob\(68157440\)/);
      assert.match(error.message, /64 MiB limit/);
      return true;
    });
    const fill = await client.createBlob(40 * MiB);
    await assert.rejects(client.createBlob(30 * MiB), { code: 'OutOfMemory' });
    await fill.abort();
    const after = await client.createBlob(30 * MiB);
    after.buffer[30 * MiB - 1] = 5;
    const id = await after.seal();
    assert.equal((await client.getBlob(id)).buffer[30 * MiB - 1], 5);
  });
});
