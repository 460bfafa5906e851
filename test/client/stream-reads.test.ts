import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { settledStatus } from '../fixtures/status';
import { streamHash } from '../fixtures/stream-chunks';

interface ReaderReport {
  count: number;
  sha256?: string;
  error?: string;
  message?: string;
}

async function readChunkRequests(daemon: TestDaemon): Promise<number> {
  const metrics = await (await fetch(`http://${daemon.httpEndpoint}/metrics`)).text();
  const line = metrics.split('\n').find((l) => l.startsWith('trellis_requests_total{kind="readChunk"}'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** A stream of `count` chunks of 4 KiB, written and finished before anyone reads it. */
async function writtenStream(client: TrellisClient, socket: string, count: number): Promise<string> {
  const stream = await client.createStream('trellis::ByteStream');
  const writer = startChild('stream-writer.ts', [socket, stream.id, String(count), 'finish', 'uniform']);
  await writer.next();
  assert.deepEqual(await writer.next(), { written: count });
  return stream.id;
}

describe('streams: a reader behind its writer takes several chunks per read', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  before(async () => {
    daemon = await startTestDaemon(['--size', '64MiB', '--http-port', '0']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  it('100 chunks written ahead arrive intact in far fewer than 100 reads; memory returns', async () => {
    const baseline = await client.status();
    const id = await writtenStream(client, daemon.socket, 100);
    const readsBefore = await readChunkRequests(daemon);
    const reader = startChild('stream-reader.ts', [daemon.socket, id]);
    await reader.next();
    assert.deepEqual(await reader.next<ReaderReport>(), { count: 100, sha256: streamHash(100, 'uniform') });
    const reads = (await readChunkRequests(daemon)) - readsBefore;
    assert.ok(reads <= 100 / 16 + 2, `${reads} readChunk requests for 100 chunks`);
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
    assert.equal(after.objects, baseline.objects);
  });

  it('a reader killed inside a read of several chunks leaves exactly the ones its caller never got', async () => {
    const baseline = await client.status();
    const id = await writtenStream(client, daemon.socket, 100);
    const first = startChild('stream-reader.ts', [daemon.socket, id, '21']);
    await first.next();
    assert.equal((await first.next<ReaderReport>()).count, 21);
    first.kill('SIGKILL');
    await first.exited;
    await settledStatus(client, (s) => s.clients <= 1);
    const second = startChild('stream-reader.ts', [daemon.socket, id]);
    await second.next();
    assert.deepEqual(await second.next<ReaderReport>(), { count: 79, sha256: streamHash(100, 'uniform', 21) });
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage, 'the chunks and the cursor were freed');
  });

  it('a reader that closes inside a read of several chunks leaves the rest to the next reader', async () => {
    const baseline = await client.status();
    const id = await writtenStream(client, daemon.socket, 100);
    const first = startChild('stream-reader.ts', [daemon.socket, id, '7', 'close']);
    await first.next();
    assert.deepEqual(await first.next<ReaderReport>(), { count: 7, sha256: streamHash(7, 'uniform') });
    await first.exited;
    const second = startChild('stream-reader.ts', [daemon.socket, id]);
    await second.next();
    assert.deepEqual(await second.next<ReaderReport>(), { count: 93, sha256: streamHash(100, 'uniform', 7) });
    const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
  });
});
