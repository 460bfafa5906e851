/**
 * Clients that stop: one that sends requests and never reads the replies (then is SIGSTOPped),
 * and one SIGSTOPped while it holds references. Neither may block the daemon for others, grow
 * the daemon's memory without bound, or keep what it held once it is SIGKILLed.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { connect, type TrellisClient } from '../../src/index';
import { MAX_UNSENT_REPLY_BYTES } from '../../src/daemon/framed-connection';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { settledStatus } from '../fixtures/status';

const MiB = 1024 * 1024;
const FLOOD_REQUESTS = 10_000;
const OBJECTS_LISTED = 400;
const ROUND_DEADLINE_MS = 10_000;

/** The daemon's resident memory less its shared-memory pages: where buffered replies would live. */
function privateRss(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return kib('VmRSS') - kib('RssShmem');
}

function withinDeadline<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>(
    (_, reject) =>
      (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ROUND_DEADLINE_MS} ms`)), ROUND_DEADLINE_MS)),
  );
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** Another client, connected now, does puts, gets and deletes, each answered in time. */
async function othersAreServed(socket: string, rounds: number): Promise<void> {
  const other = await withinDeadline('connect', connect(socket));
  try {
    for (let i = 0; i < rounds; i++) {
      const id = await withinDeadline('put', other.put(Buffer.alloc(1024, i)));
      assert.deepEqual(await withinDeadline('get', other.get(id)), Buffer.alloc(1024, i));
      await withinDeadline('release', other.release(id));
      await withinDeadline('delete', other.delete(id));
    }
  } finally {
    await other.close();
  }
}

describe('clients that stop reading or stop running', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  before(async () => {
    daemon = await startTestDaemon(['--size', '256MiB']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  it('a client that never reads its replies (then SIGSTOPped) neither blocks the daemon nor grows it', async () => {
    // Each listObjects reply carries 400 summaries: 10,000 unread ones would be hundreds of MiB.
    const ids: string[] = [];
    for (let i = 0; i < OBJECTS_LISTED; i++) ids.push(await client.put(Buffer.alloc(64, i), { labels: { i: `${i}` } }));
    const replyBytes = Buffer.byteLength(JSON.stringify(await client.listObjects()));
    const rssBefore = privateRss(daemon.process.pid!);
    const requestsBefore = (await client.status()).requests;

    const flooder = startChild('unread-flooder.ts', [daemon.socket, String(FLOOD_REQUESTS)]);
    await flooder.next();
    // Let the daemon take what it will from the socket, then stop the client for good.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    flooder.kill('SIGSTOP');
    await othersAreServed(daemon.socket, 50);

    const answered = (await client.status()).requests - requestsBefore;
    const growth = privateRss(daemon.process.pid!) - rssBefore;
    // The bound holds a few hundred of these replies (msgpack is smaller than the JSON measured);
    // the other client's rounds add about 200 requests.
    const bound = (2 * MAX_UNSENT_REPLY_BYTES) / (replyBytes / 2) + 500;
    assert.ok(
      answered < bound,
      `the daemon answered ${answered} of ${FLOOD_REQUESTS} unread requests (${replyBytes} B each) instead of waiting`,
    );
    assert.ok(
      growth < MAX_UNSENT_REPLY_BYTES + 64 * MiB,
      `the daemon's private RSS grew ${(growth / MiB).toFixed(0)} MiB for a client that reads nothing`,
    );

    flooder.kill('SIGKILL');
    await flooder.exited;
    const after = await settledStatus(client, (s) => s.clients === 1);
    assert.equal(after.clients, 1, 'the killed client is gone');
    await client.delete(ids);
  });

  it('an RPC peer that never reads its readBlobs replies (then SIGSTOPped) neither blocks the daemon nor grows it', async () => {
    // Each reply carries 1 MiB: 2,000 unread ones would be 2 GiB of buffered views and frames.
    const rpcDaemon = await startTestDaemon(['--size', '256MiB', '--rpc-port', '0']);
    const owner = await connect(rpcDaemon.socket);
    try {
      const id = await owner.put(Buffer.alloc(MiB, 7));
      const requestsBefore = (await owner.status()).requests;
      const flooder = startChild('unread-flooder.ts', [rpcDaemon.rpcEndpoint!, '2000', id, String(MiB)]);
      await flooder.next();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      flooder.kill('SIGSTOP');
      await othersAreServed(rpcDaemon.socket, 20);
      const answered = (await owner.status()).requests - requestsBefore;
      // About MAX_UNSENT_REPLY_BYTES of replies plus what the kernel's socket buffers take.
      assert.ok(answered < 200, `the daemon answered ${answered} of 2000 unread 1 MiB readBlobs instead of waiting`);
      flooder.kill('SIGKILL');
      await flooder.exited;
      const after = await settledStatus(owner, (s) => s.clients === 1);
      assert.equal(after.clients, 1, 'the killed RPC session is gone');
    } finally {
      await owner.close();
      await rpcDaemon.stop();
    }
  });

  it('a client SIGSTOPped while holding references: others are served; SIGKILL releases what it held', async () => {
    const baseline = await client.status();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await client.put(Buffer.alloc(MiB, i)));
    const holder = startChild('reference-holder.ts', [daemon.socket, ...ids]);
    assert.equal((await holder.next<{ held: number }>()).held, 3);
    holder.kill('SIGSTOP');

    // Deleting what the stopped client holds defers the free; nobody waits on it meanwhile.
    await client.delete(ids);
    const held = await client.status();
    assert.ok(held.deferredFrees >= 3, `deferred frees: ${held.deferredFrees}`);
    assert.ok(held.memoryUsage >= baseline.memoryUsage + 4 * MiB, 'its objects and its unsealed blob still count');
    await othersAreServed(daemon.socket, 20);

    holder.kill('SIGKILL');
    await holder.exited;
    const after = await settledStatus(
      client,
      (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage && s.deferredFrees === 0,
    );
    assert.equal(after.memoryUsage, baseline.memoryUsage, 'its references and unsealed blob were released');
    assert.equal(after.deferredFrees, 0);
    assert.equal(after.objects, baseline.objects);
  });
});
