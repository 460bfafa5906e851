import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { settledStatus } from '../fixtures/status';
import { streamChunk, streamHash } from '../fixtures/stream-chunks';

interface ReaderReport {
  count: number;
  sha256?: string;
  error?: string;
  message?: string;
}

/** Blobs the daemon created for clients so far (from its /metrics). */
async function createBlobsRequests(daemon: TestDaemon): Promise<number> {
  const metrics = await (await fetch(`http://${daemon.httpEndpoint}/metrics`)).text();
  const line = metrics.split('\n').find((l) => l.startsWith('trellis_requests_total{kind="createBlobs"}'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('streams: chunks recycled into the writer', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  before(async () => {
    // A buffer of 16 chunks of 4 KiB, so the writer waits for the reader and gets chunks back.
    daemon = await startTestDaemon(['--size', '64MiB', '--stream-buffer', '64KiB', '--http-port', '0']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  it('a chunk the reader still has keeps its bytes while the writer goes on; memory returns', async () => {
    const baseline = await client.status();
    const createdBefore = await createBlobsRequests(daemon);
    const stream = await client.createStream('trellis::ByteStream');
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '400', 'finish', 'uniform']);
    await writer.next();
    const reader = await client.openReader(stream.id);
    let count = 0;
    for await (const chunk of reader) {
      const view = chunk as Buffer;
      assert.deepEqual(view, streamChunk(count, 'uniform'), `chunk ${count}`);
      if (count % 100 === 50) {
        // Held while the writer fills the stream again, with blobs recycled from earlier chunks.
        await settledStatus(client, (s) => s.memoryUsage - baseline.memoryUsage >= 64 * 1024, 5000);
        assert.deepEqual(view, streamChunk(count, 'uniform'), `chunk ${count}, held while the writer went on`);
      }
      count++;
    }
    assert.equal(count, 400);
    assert.deepEqual(await writer.next(), { written: 400 });
    const created = (await createBlobsRequests(daemon)) - createdBefore;
    assert.ok(
      created < 100,
      `the writer reused chunks instead of creating 400 blobs (${created} createBlobs requests)`,
    );
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage, 'recycled blobs the writer did not use went back');
    assert.equal(after.objects, baseline.objects);
    assert.equal(after.streams, baseline.streams);
  });

  it('a reader that keeps chunks gets none recycled: every chunk keeps its bytes to the end', async () => {
    const baseline = await client.status();
    const stream = await client.createStream('trellis::ByteStream');
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '100', 'finish', 'uniform']);
    await writer.next();
    const keeper = await connect(daemon.socket);
    const kept: Buffer[] = [];
    for await (const chunk of await keeper.openReader(stream.id, { keep: true })) kept.push(chunk as Buffer);
    assert.equal(kept.length, 100);
    kept.forEach((view, i) => assert.deepEqual(view, streamChunk(i, 'uniform'), `kept chunk ${i}`));
    await keeper.close();
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
  });

  it('a reader killed mid-stream: the next reader gets the rest intact, and memory returns', async () => {
    const baseline = await client.status();
    const stream = await client.createStream('trellis::ByteStream');
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '300', 'finish', 'uniform']);
    await writer.next();
    const first = startChild('stream-reader.ts', [daemon.socket, stream.id, '100']);
    await first.next();
    assert.equal((await first.next<ReaderReport>()).count, 100);
    first.kill('SIGKILL');
    await settledStatus(client, (s) => s.clients <= 2);
    const second = startChild('stream-reader.ts', [daemon.socket, stream.id]);
    await second.next();
    const report = await second.next<ReaderReport>();
    assert.deepEqual(report, { count: 200, sha256: streamHash(300, 'uniform', 100) }, 'chunks 100..299, none lost');
    assert.deepEqual(await writer.next(), { written: 300 });
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
    assert.equal(after.objects, baseline.objects);
  });

  it('a writer killed while it holds recycled blobs fails the stream, and they are reclaimed', async () => {
    const baseline = await client.status();
    const stream = await client.createStream('trellis::ByteStream');
    const reader = startChild('stream-reader.ts', [daemon.socket, stream.id]);
    await reader.next();
    // 200 chunks through a 16-chunk buffer: the reader has moved past most of them, so the writer
    // has been writing into recycled blobs (and holds some) when it stops without finishing.
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '200', 'hang', 'uniform']);
    await writer.next();
    assert.deepEqual(await writer.next(), { written: 200 });
    writer.kill('SIGKILL');
    const report = await reader.next<ReaderReport>();
    assert.equal(report.error, 'StreamFailed');
    assert.match(report.message!, /the writer \(client \d+\) disconnected/);
    assert.ok(report.count >= 180 && report.count <= 200, `the reader got the chunks written (${report.count})`);
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
    assert.equal(after.objects, baseline.objects);
    assert.equal(after.streams, baseline.streams);
  });
});
