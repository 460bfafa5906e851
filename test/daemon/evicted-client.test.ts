import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { onCleanup } from '../fixtures/setup';
import { type TestDaemon } from '../fixtures/daemon';
import { startObservedDaemon } from '../fixtures/observed-daemon';
import { settledStatus } from '../fixtures/status';
import { startWorker } from '../fixtures/worker';
import type { TrellisClient } from '../../src/index';

/** The unsealed blob the thrown-off client writes into: a size no other object here has. */
const BLOB_BYTES = 48 * 1024;
/** A stream reader's cursor (8 bytes, a block of 64). */
const CURSOR_BYTES = 8;
/** A blob that needs a segment of its own, larger than a standard one. */
const SPARE_BLOB_BYTES = 48 * 1024 * 1024;
/** Where Linux takes the next pid from (the last one given, in this pid namespace). */
const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid';

/**
 * A new process with `pid`, which has just exited: the pid allocator is set back to just before
 * it (writing NS_LAST_PID needs CAP_SYS_ADMIN); other processes of the machine may take it first,
 * so it tries again. Undefined when it cannot.
 */
async function processWithPid(pid: number): Promise<ChildProcess | undefined> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      fs.writeFileSync(NS_LAST_PID, String(pid - 1));
    } catch {
      return undefined;
    }
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    if (child.pid === pid) {
      onCleanup(async () => {
        child.kill('SIGKILL');
        await exited;
      });
      return child;
    }
    child.kill('SIGKILL');
    await exited;
  }
  return undefined;
}

describe('a client the daemon threw off, still running', function () {
  let daemon: TestDaemon;
  let observer: TrellisClient;

  // No put rings: every put below takes its block from the pool, where the freed ones are.
  const start = async (args: string[]) => {
    ({ daemon, observer } = await startObservedDaemon([...args, '--put-ring-bytes', '0']));
  };

  it('writes into no one else: its unsealed blobs and cursor are kept until its process exits', async () => {
    await start(['--size', '64MiB']);
    // A stream with chunks for the hostile client's reader, written by the observer.
    const stream = await observer.createStream('trellis::ByteStream');
    const writer = await observer.openWriter(stream.id);
    for (let i = 0; i < 4; i++) await writer.write(Buffer.alloc(4096, i + 1));
    const hostile = await startWorker(daemon.socket, { script: 'evicted-writer.ts' });
    assert.deepEqual(await hostile.run('open', { size: BLOB_BYTES, id: stream.id }), {
      blob: BLOB_BYTES,
      cursor: CURSOR_BYTES,
    });
    // A block after the hostile client's, so that its blocks, once free, are holes the puts fit.
    const fence = await observer.put(Buffer.alloc(100_000, 7));
    const { code } = await hostile.run<{ code: string }>('misbehave');
    assert.equal(code, 'ProtocolError');
    assert.match(daemon.output(), /closed a client connection: a frame must be a map/);
    const thrownOff = await settledStatus(observer, (s) => s.clients === 1);
    assert.equal(thrownOff.clients, 1, 'the daemon dropped the thrown-off client');
    // Puts of the sizes of its blocks: freed at once, the first of each would take them.
    const puts: Array<{ id: string; bytes: Buffer }> = [];
    for (let i = 0; i < 40; i++) {
      const bytes = Buffer.alloc(i % 2 === 0 ? BLOB_BYTES : CURSOR_BYTES, 0x10 + i);
      puts.push({ id: await observer.put(bytes), bytes });
    }
    const before = await hostile.run<number>('scribbles');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok((await hostile.run<number>('scribbles')) > before, 'it went on writing after the puts');
    const changed: string[] = [];
    for (const put of puts) {
      const got = (await observer.get(put.id, { copy: true })) as Buffer;
      if (!got.equals(put.bytes)) changed.push(`${put.id} (${put.bytes.length} bytes)`);
    }
    assert.deepEqual(changed, [], 'puts whose bytes changed after they were put');
    // Its blocks stay out of use while it runs; once its process is gone they come back.
    await observer.delete([fence, ...puts.map((put) => put.id)]);
    const held = (await observer.status()).memoryUsage;
    hostile.child.kill('SIGKILL');
    await hostile.child.exited;
    const kept = BLOB_BYTES + 64;
    const freed = await settledStatus(observer, (s) => s.memoryUsage <= held - kept, 10_000);
    assert.ok(freed.memoryUsage <= held - kept, `${freed.memoryUsage} bytes in use, ${held} before the client exited`);
  });

  it('a blob that took the spare segment is kept too: the next blob of its size goes elsewhere', async function () {
    this.timeout(60_000);
    // Standard segments of 32 MiB: a 48 MiB blob takes the 64 MiB spare as its own segment.
    await start(['--size', '256MiB', '--spare-segment', '64MiB']);
    await settledStatus(observer, (s) => s.memorySpare > 0, 20_000);
    const hostile = await startWorker(daemon.socket, { script: 'evicted-writer.ts' });
    assert.deepEqual(await hostile.run('open', { size: SPARE_BLOB_BYTES }), { blob: SPARE_BLOB_BYTES });
    assert.equal((await observer.status()).memorySpare, 0, 'the blob took the spare');
    assert.equal((await hostile.run<{ code: string }>('misbehave')).code, 'ProtocolError');
    assert.equal((await settledStatus(observer, (s) => s.clients === 1)).clients, 1);
    // Freed at once, the spare's segment would be empty, and this blob would land where the first was.
    const writer = await observer.createBlob(SPARE_BLOB_BYTES);
    writer.buffer.fill(0x33);
    const id = await writer.seal();
    const before = await hostile.run<number>('scribbles');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok((await hostile.run<number>('scribbles')) > before, 'it went on writing');
    const got = (await observer.get(id, { copy: true })) as Buffer;
    assert.equal(got.indexOf(0xee), -1, 'the blob put after the client was thrown off changed');
    await observer.delete(id);
    const held = (await observer.status()).memoryUsage;
    hostile.child.kill('SIGKILL');
    await hostile.child.exited;
    const freed = await settledStatus(observer, (s) => s.memoryUsage <= held - SPARE_BLOB_BYTES, 10_000);
    assert.ok(freed.memoryUsage <= held - SPARE_BLOB_BYTES, `${freed.memoryUsage} bytes in use, ${held} before`);
  });

  it('a later process that got its pid does not keep its memory: freed once the thrown-off one is gone', async function () {
    this.timeout(60_000);
    await start(['--size', '64MiB']);
    const hostile = await startWorker(daemon.socket, { script: 'evicted-writer.ts' });
    assert.deepEqual(await hostile.run('open', { size: BLOB_BYTES }), { blob: BLOB_BYTES });
    assert.equal((await hostile.run<{ code: string }>('misbehave')).code, 'ProtocolError');
    assert.equal((await settledStatus(observer, (s) => s.clients === 1)).clients, 1);
    const held = (await observer.status()).memoryUsage;
    const pid = hostile.child.pid!;
    // The daemon is stopped while the pid changes hands, so that no check of its falls between.
    daemon.process.kill('SIGSTOP');
    let impostor: ChildProcess | undefined;
    try {
      hostile.child.kill('SIGKILL');
      await hostile.child.exited;
      impostor = await processWithPid(pid);
    } finally {
      daemon.process.kill('SIGCONT');
    }
    if (!impostor) this.skip();
    const freed = await settledStatus(observer, (s) => s.memoryUsage <= held - BLOB_BYTES, 10_000);
    assert.ok(freed.memoryUsage <= held - BLOB_BYTES, `${freed.memoryUsage} bytes in use, ${held} before it exited`);
    assert.equal(impostor.exitCode, null, 'the process with its pid still runs');
  });

  it('a thrown-off client that exited but is not reaped yet (a zombie) frees its memory', async function () {
    this.timeout(60_000);
    await start(['--size', '64MiB']);
    const hostile = await startWorker(daemon.socket, { script: 'evicted-writer.ts', underSleep: true });
    const pid = await hostile.run<number>('pid');
    // Only while it runs (its pid is its own): once killed, the pid may be another's after it is reaped.
    let killed = false;
    onCleanup(() => {
      if (!killed) killQuietly(pid);
    });
    assert.deepEqual(await hostile.run('open', { size: BLOB_BYTES }), { blob: BLOB_BYTES });
    assert.equal((await hostile.run<{ code: string }>('misbehave')).code, 'ProtocolError');
    assert.equal((await settledStatus(observer, (s) => s.clients === 1)).clients, 1);
    const held = (await observer.status()).memoryUsage;
    process.kill(pid, 'SIGKILL');
    killed = true;
    for (let i = 0; i < 200 && processState(pid) !== 'Z'; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(processState(pid), 'Z', 'the client is a zombie: its parent, a sleep, does not reap it');
    const freed = await settledStatus(observer, (s) => s.memoryUsage <= held - BLOB_BYTES, 10_000);
    assert.ok(freed.memoryUsage <= held - BLOB_BYTES, `${freed.memoryUsage} bytes in use, ${held} before it exited`);
    assert.equal(processState(pid), 'Z', 'still a zombie when its memory came back');
  });
});

/** The state letter of process `pid` (field 3 of /proc/PID/stat), or undefined when it is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}
