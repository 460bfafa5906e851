import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type TrellisClient } from '../../src/index';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { fillPattern } from '../fixtures/pattern';
import { settledStatus } from '../fixtures/status';
import { streamHash } from '../fixtures/stream-chunks';

function expectedHash(count: number): string {
  const hash = createHash('sha256');
  for (let i = 0; i < count; i++) {
    const chunk = Buffer.alloc(1 + i * 37);
    fillPattern(chunk, i);
    hash.update(chunk);
  }
  return hash.digest('hex');
}

/**
 * The daemon's status once only `client` is connected: a client an earlier test closed may not be
 * gone yet (the daemon sees its socket close after this client's next request, under load), and
 * what it still holds (a reader's cursor blob, say) would be freed after the baseline was taken,
 * leaving memoryUsage below it for good.
 */
function settledBaseline(client: TrellisClient) {
  return settledStatus(client, (s) => s.clients === 1);
}

interface ReaderReport {
  count: number;
  sha256?: string;
  error?: string;
  message?: string;
}

const MIB = 1024 * 1024;

describe('streams between processes', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  before(async () => {
    // A small stream buffer, so the writer really waits for the reader.
    daemon = await startTestDaemon(['--size', '64MiB', '--stream-buffer', '256KiB']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  it('1000 chunks of growing sizes arrive in order, then the reader stops; memory returns', async () => {
    const baseline = await settledBaseline(client);
    const stream = await client.createStream('trellis::ByteStream');
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '1000', 'finish']);
    const reader = startChild('stream-reader.ts', [daemon.socket, stream.id]);
    await writer.next();
    await reader.next();
    const report = await reader.next<ReaderReport>();
    assert.equal(report.error, undefined, report.message);
    assert.equal(report.count, 1000);
    assert.equal(report.sha256, expectedHash(1000));
    assert.equal(await reader.exited, 0);
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
    assert.equal(after.objects, baseline.objects);
    assert.equal(after.streams, baseline.streams);
  });

  it('a reader started before the writer waits for it', async () => {
    const stream = await client.createStream('trellis::ByteStream');
    const reader = startChild('stream-reader.ts', [daemon.socket, stream.id]);
    await reader.next();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '20', 'finish']);
    await writer.next();
    const report = await reader.next<ReaderReport>();
    assert.deepEqual(report, { count: 20, sha256: expectedHash(20) });
  });

  it('a failed stream throws StreamFailed with the reason in the reader', async () => {
    const stream = await client.createStream('trellis::ByteStream');
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '5', 'fail']);
    await writer.next();
    await writer.next();
    const reader = startChild('stream-reader.ts', [daemon.socket, stream.id]);
    await reader.next();
    const report = await reader.next<ReaderReport>();
    assert.equal(report.error, 'StreamFailed');
    assert.match(report.message!, new RegExp(`stream ${stream.id} failed: the source went away`));
  });

  it('a second writer or a second reader gets StreamOpened', async () => {
    const stream = await client.createStream('trellis::ByteStream');
    const other = await connect(daemon.socket);
    await client.openWriter(stream.id);
    await assert.rejects(other.openWriter(stream.id), {
      code: 'StreamOpened',
      message: `stream ${stream.id} already has a writer`,
    });
    await other.openReader(stream.id);
    await assert.rejects(client.openReader(stream.id), { code: 'StreamOpened', message: /already has a reader/ });
    await other.close();
  });

  it('a writer killed mid-stream fails the stream for its reader, and nothing leaks', async () => {
    const baseline = await settledBaseline(client);
    const stream = await client.createStream('trellis::ByteStream');
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '50', 'hang']);
    await writer.next();
    await writer.next(); // wrote 50 chunks, not finished
    const reader = startChild('stream-reader.ts', [daemon.socket, stream.id]);
    await reader.next();
    writer.kill('SIGKILL');
    const report = await reader.next<ReaderReport>();
    assert.equal(report.error, 'StreamFailed');
    assert.match(report.message!, /the writer \(client \d+\) disconnected/);
    assert.ok(report.count <= 50);
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
    assert.equal(after.streams, baseline.streams, 'the failed stream is gone once its reader saw the failure');
  });

  it('a reader killed mid-stream frees its slot; a new reader gets the rest', async () => {
    const baseline = await settledBaseline(client);
    const stream = await client.createStream('trellis::ByteStream');
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '100', 'finish']);
    await writer.next();
    const first = startChild('stream-reader.ts', [daemon.socket, stream.id, '10']);
    await first.next();
    assert.equal((await first.next<ReaderReport>()).count, 10);
    first.kill('SIGKILL');
    await first.exited;
    await settledStatus(client, (s) => s.clients <= 2);
    const second = startChild('stream-reader.ts', [daemon.socket, stream.id]);
    await second.next();
    const report = await second.next<ReaderReport>();
    assert.equal(report.error, undefined, report.message);
    assert.equal(report.count, 90, 'the chunk the killed reader held was consumed; it got the other 90');
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
  });

  it('a stream that never finished is dropped once every client that touched it is gone', async () => {
    const baseline = await settledBaseline(client);
    const other = await connect(daemon.socket);
    const unopened = await other.createStream('trellis::ByteStream');
    const failed = await other.createStream('trellis::ByteStream');
    const writer = await other.openWriter(failed.id);
    await writer.write(Buffer.alloc(1000, 1));
    await other.openReader(failed.id);
    assert.equal((await client.status()).streams, baseline.streams + 2);
    await other.close();
    const after = await settledStatus(client, (s) => s.clients === 1 && s.streams === baseline.streams);
    assert.equal(after.streams, baseline.streams, 'the unopened and the failed stream are gone');
    assert.equal(after.memoryUsage, baseline.memoryUsage);
    await assert.rejects(client.openReader(unopened.id), { code: 'ObjectNotFound' });
  });

  it('a finished stream waits for a reader after its maker is gone', async () => {
    const other = await connect(daemon.socket);
    const stream = await other.createStream('trellis::ByteStream');
    const writer = await other.openWriter(stream.id);
    await writer.write(Buffer.alloc(1000, 2));
    await writer.finish();
    await other.close();
    await settledStatus(client, (s) => s.clients === 1);
    const chunks: Buffer[] = [];
    for await (const chunk of await client.openReader(stream.id)) chunks.push(Buffer.from(chunk as Buffer));
    assert.deepEqual(chunks, [Buffer.alloc(1000, 2)]);
  });

  it('chunks of one size (now and then another) arrive in order; blobs made ahead go back, memory returns', async () => {
    const baseline = await settledBaseline(client);
    const stream = await client.createStream('trellis::ByteStream');
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '300', 'finish', 'steady']);
    const reader = startChild('stream-reader.ts', [daemon.socket, stream.id]);
    await writer.next();
    await reader.next();
    const report = await reader.next<ReaderReport>();
    assert.deepEqual(report, { count: 300, sha256: streamHash(300, 'steady') });
    assert.deepEqual(await writer.next(), { written: 300 });
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
    assert.equal(after.objects, baseline.objects);
    assert.equal(after.streams, baseline.streams);
  });

  it('a reader that closes early leaves the chunk it had read ahead to the next reader', async () => {
    const baseline = await settledBaseline(client);
    const stream = await client.createStream('trellis::ByteStream');
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '40', 'finish', 'steady']);
    await writer.next();
    const first = startChild('stream-reader.ts', [daemon.socket, stream.id, '10', 'close']);
    await first.next();
    assert.deepEqual(await first.next<ReaderReport>(), { count: 10, sha256: streamHash(10, 'steady') });
    assert.equal(await first.exited, 0);
    const second = startChild('stream-reader.ts', [daemon.socket, stream.id]);
    await second.next();
    const report = await second.next<ReaderReport>();
    assert.deepEqual(report, { count: 30, sha256: streamHash(40, 'steady', 10) }, 'chunks 10..39, none lost');
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
    assert.equal(after.objects, baseline.objects);
  });

  it('a writer ahead of its reader holds at most 16 MiB of chunks in flight, not 16 chunks of any size', async () => {
    const baseline = await settledBaseline(client);
    const stream = await client.createStream('trellis::ByteStream');
    const other = await connect(daemon.socket);
    const writer = await other.openWriter(stream.id);
    const chunk = Buffer.alloc(2 * MIB, 7);
    // No reader: past the 256 KiB buffer, writes wait for room once the writer's chunks in flight
    // reach the bound. A write that has not resolved after a while is waiting for it.
    let stalled: Promise<void> | undefined;
    for (let i = 0; i < 40 && !stalled; i++) {
      const write = writer.write(chunk);
      const waited = await Promise.race([write.then(() => false), delay(500).then(() => true)]);
      if (waited) stalled = write.catch(() => undefined);
    }
    assert.ok(stalled, 'the writer never waited');
    const held = (await client.status()).memoryUsage - baseline.memoryUsage;
    // 8 chunks in flight (16 MiB), the one that waits, one queued and 4 made ahead: 14 chunks
    // (16 in flight, without the bound in bytes: 22).
    assert.ok(held <= 16 * 2 * MIB, `the writer holds ${held} bytes of chunks`);
    await other.close();
    await stalled;
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
  });

  it('a writer copies its chunks into shared memory without counting them as its own memory', async () => {
    // An ArrayBuffer over a chunk's blob would count its bytes as this process's external memory,
    // and V8 collects garbage every few dozen MiB of those: a stream writer paid ~20% of its CPU.
    const stream = await client.createStream('trellis::ByteStream');
    const reader = startChild('stream-reader.ts', [daemon.socket, stream.id]);
    await reader.next();
    const writer = await client.openWriter(stream.id);
    const chunk = Buffer.alloc(MIB, 3);
    const before = process.memoryUsage().external;
    let counted = 0;
    for (let i = 0; i < 24; i++) {
      await writer.write(chunk);
      counted = Math.max(counted, process.memoryUsage().external - before);
    }
    await writer.finish();
    const report = await reader.next<ReaderReport>();
    assert.equal(report.count, 24);
    assert.ok(counted < MIB / 2, `${counted} bytes counted as external memory while writing`);
  });

  it('bad stream requests get typed errors', async () => {
    await assert.rejects(client.createStream('trellis::Nonsense'), {
      code: 'InvalidArgument',
      message: /unknown stream type "trellis::Nonsense"/,
    });
    await assert.rejects(client.openReader('o00000000deadbeef'), {
      code: 'ObjectNotFound',
      message: /stream o00000000deadbeef does not exist/,
    });
    const stream = await client.createStream('trellis::ByteStream');
    const writer = await client.openWriter(stream.id);
    await writer.finish();
    await assert.rejects(writer.write(Buffer.from('late')), {
      code: 'StreamFailed',
      message: /already finished or failed/,
    });
  });
});
