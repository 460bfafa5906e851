import * as assert from 'node:assert/strict';
import { connect, type DaemonStatus, type TrellisClient } from '../../src/index';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { startProxy, type TestProxy } from '../fixtures/proxy';
import { settledStatus } from '../fixtures/status';
import { expectRejects } from '../fixtures/trellis-errors';

const MiB = 1024 * 1024;
/** B's deadline for each answer from A: short, so a silent peer fails the test quickly. */
const PEER_TIMEOUT_MS = 1500;

/** Waits until B has allocated the copy's blobs, that is, until the bytes are on their way. */
async function copyStarted(client: TrellisClient, before: DaemonStatus): Promise<void> {
  await settledStatus(client, (status) => status.memoryUsage > before.memoryUsage, 10_000);
}

describe('migrate when the owner fails: typed errors, bounded waits, nothing half-made', function () {
  let a: TestDaemon;
  let b: TestDaemon;
  let proxy: TestProxy;
  let onA: TrellisClient;
  let onB: TrellisClient;
  let big: string;
  let endpoint: RegExp;

  before(async () => {
    a = await startTestDaemon(['--rpc-port', '0', '--instance-id', '1', '--size', '512MiB']);
    proxy = await startProxy(a.rpcEndpoint!);
    endpoint = new RegExp(`127\\.0\\.0\\.1:${proxy.port}`);
    b = await startTestDaemon([
      ...['--rpc-port', '0', '--instance-id', '2', '--size', '512MiB'],
      ...['--rpc-peer', `1=127.0.0.1:${proxy.port}`, '--rpc-timeout', String(PEER_TIMEOUT_MS)],
    ]);
    onA = await connect(a.socket);
    onB = await connect(b.socket);
    big = await onA.put(Buffer.alloc(128 * MiB, 0x5a));
  });
  after(async () => {
    await onA?.close();
    await onB?.close();
    await b?.stop();
    await a?.stop();
    await proxy?.close();
  });

  /** B's memory and objects are back where they were, and B still works. */
  async function assertNothingLeft(before: DaemonStatus): Promise<void> {
    const after = await settledStatus(
      onB,
      (status) => status.memoryUsage === before.memoryUsage && status.clients === before.clients,
    );
    assert.equal(after.memoryUsage, before.memoryUsage, 'no copied blob is left on B');
    assert.equal(after.objects, before.objects, 'no object is left on B');
    assert.equal(after.clients, before.clients, 'the copy job has ended');
    assert.equal(await onB.get(await onB.put('B still works')), 'B still works');
  }

  it('an owner that cannot be reached is Unavailable at once', async () => {
    proxy.cut();
    const before = await onB.status();
    const started = Date.now();
    await expectRejects(onB.migrate(big), 'Unavailable', endpoint);
    assert.ok(Date.now() - started < PEER_TIMEOUT_MS, 'a refused connection fails without waiting for a deadline');
    proxy.restore();
    await assertNothingLeft(before);
  });

  it('an owner that stops answering mid-copy is Unavailable after the deadline; the partial copy is freed', async () => {
    await onB.migrate(await onA.put('warm-up')); // connects B to A through the proxy
    const before = await onB.status();
    proxy.pauseAfter('fromTarget', 16 * MiB);
    const started = Date.now();
    const migrating = onB.migrate(big);
    // Watched from the start: on a loaded machine the deadline can pass before a status poll
    // sees the partial copy. The message naming readBlobs shows the copy had begun either way.
    const failed = expectRejects(
      migrating,
      'Unavailable',
      new RegExp(`${endpoint.source} did not answer readBlobs within ${PEER_TIMEOUT_MS} ms`),
    );
    await Promise.race([copyStarted(onB, before), failed]);
    await failed;
    assert.ok(Date.now() - started < PEER_TIMEOUT_MS + 5000, 'bounded by the deadline');
    proxy.resume();
    await assertNothingLeft(before);
    // The owner is fine: the next migrate connects afresh and copies everything.
    const copy = await onB.migrate(big);
    assert.ok((await onB.getBlob(copy)).buffer.equals(Buffer.alloc(128 * MiB, 0x5a)));
    await onB.delete(copy);
  });

  it('an owner killed mid-copy is Unavailable; the partial copy is freed', async () => {
    await onB.migrate(await onA.put('warm-up again'));
    const before = await onB.status();
    proxy.pauseAfter('fromTarget', 16 * MiB);
    const migrating = onB.migrate(big);
    await copyStarted(onB, before);
    a.process.kill('SIGKILL');
    await a.stop();
    // The proxy lets the stalled bytes through, then passes on the dead connection's end. On a
    // loaded machine the kill itself can outlast B's deadline: any Unavailable naming the peer
    // (closed, reset, or no answer in time) is right.
    proxy.resume();
    await expectRejects(migrating, 'Unavailable', endpoint);
    await assertNothingLeft(before);
    await expectRejects(onB.migrate(big), 'Unavailable', endpoint);
  });
});
