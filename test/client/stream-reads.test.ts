import * as assert from 'node:assert/strict';
import { connect, connectRpc, type TrellisClient } from '../../src/index';
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

async function readChunkRequests(daemon: TestDaemon): Promise<number> {
  const metrics = await (await fetch(`http://${daemon.httpEndpoint}/metrics`)).text();
  const line = metrics.split('\n').find((l) => l.startsWith('trellis_requests_total{kind="readChunk"}'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** Chunks of stream `id` written and not yet handed to a reader, as the dashboard's API shows them. */
async function queuedChunks(daemon: TestDaemon, id: string): Promise<number | undefined> {
  const body = (await (await fetch(`http://${daemon.httpEndpoint}/api/streams`)).json()) as {
    streams: Array<{ id: string; queuedChunks: number }>;
  };
  return body.streams.find((stream) => stream.id === id)?.queuedChunks;
}

/** Polls until `read` gives `expected` (or 5 s pass), and returns the last value. */
async function settled<T>(read: () => Promise<T>, expected: T): Promise<T> {
  const deadline = Date.now() + 5000;
  let value = await read();
  while (value !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    value = await read();
  }
  return value;
}

/** A reader in another process reads the stream from where it stands to its end: what it got. */
async function readToTheEnd(socket: string, id: string): Promise<ReaderReport> {
  const reader = startChild('stream-reader.ts', [socket, id]);
  await reader.next();
  return reader.next<ReaderReport>();
}

/**
 * Waits until only this test's client is connected and the daemon holds the memory it held at
 * `baseline`; returns that status.
 */
async function assertMemoryBack(client: TrellisClient, baseline: { memoryUsage: number }, message?: string) {
  const after = await settledStatus(client, (s) => s.clients === 1 && s.memoryUsage === baseline.memoryUsage);
  assert.equal(after.memoryUsage, baseline.memoryUsage, message);
  return after;
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
    daemon = await startTestDaemon(['--size', '64MiB', '--http-port', '0', '--rpc-port', '0']);
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
    assert.deepEqual(await readToTheEnd(daemon.socket, id), { count: 100, sha256: streamHash(100, 'uniform') });
    const reads = (await readChunkRequests(daemon)) - readsBefore;
    assert.ok(reads <= 100 / 16 + 2, `${reads} readChunk requests for 100 chunks`);
    const after = await assertMemoryBack(client, baseline);
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
    assert.deepEqual(await readToTheEnd(daemon.socket, id), { count: 79, sha256: streamHash(100, 'uniform', 21) });
    await assertMemoryBack(client, baseline, 'the chunks and the cursor were freed');
  });

  it('a reader that closes inside a read of several chunks leaves the rest to the next reader', async () => {
    const baseline = await client.status();
    const id = await writtenStream(client, daemon.socket, 100);
    const first = startChild('stream-reader.ts', [daemon.socket, id, '7', 'close']);
    await first.next();
    assert.deepEqual(await first.next<ReaderReport>(), { count: 7, sha256: streamHash(7, 'uniform') });
    await first.exited;
    assert.deepEqual(await readToTheEnd(daemon.socket, id), { count: 93, sha256: streamHash(100, 'uniform', 7) });
    await assertMemoryBack(client, baseline);
  });

  it('a next() under way when close() is called gives nothing, and writes no cursor the close freed', async () => {
    // close() frees the cursor (closeReader); the read answered just before it must not then be
    // counted into that block, which another put may have taken by the time the answer is seen.
    const id = await writtenStream(client, daemon.socket, 10);
    const reader = await client.openReader(id);
    const pending = reader.next();
    await reader.close();
    assert.equal(await pending, undefined, 'the reader was closed before the answer was taken');
    assert.equal(await reader.next(), undefined);
  });

  it('a next() under way when close() is called: the next reader, in another process, gets its chunks', async () => {
    // The read is answered before the daemon sees the close: its chunks never reached the caller.
    const id = await writtenStream(client, daemon.socket, 10);
    const reader = await client.openReader(id);
    const pending = reader.next();
    await reader.close();
    assert.equal(await pending, undefined);
    assert.deepEqual(await readToTheEnd(daemon.socket, id), { count: 10, sha256: streamHash(10, 'uniform') });
  });

  it('a reader without a cursor (over RPC) closed during a next(): no chunk lost, none given twice', async () => {
    const baseline = await client.status();
    const id = await writtenStream(client, daemon.socket, 10);
    const remote = await connectRpc(daemon.rpcEndpoint!);
    try {
      // Closed during its first read, which the daemon answers before it sees the close.
      const first = await remote.openReader(id);
      const pending = first.next();
      await first.close();
      assert.equal(await pending, undefined);
      // The next reader gets chunk 0; closed during its second read (the one read ahead).
      const second = await remote.openReader(id);
      assert.deepEqual(await second.next(), streamChunk(0, 'uniform'));
      const more = second.next();
      await second.close();
      assert.equal(await more, undefined);
    } finally {
      await remote.close();
    }
    assert.deepEqual(await readToTheEnd(daemon.socket, id), { count: 9, sha256: streamHash(10, 'uniform', 1) });
    await assertMemoryBack(client, baseline);
  });

  it("the stream's end, answered to a prefetch, frees no cursor the reader still writes to", async () => {
    // The soak once read a 235-byte blob whose header said 3 bytes: the daemon freed the cursor
    // when it answered the prefetch with the end, a put took its block, and the reader then wrote
    // the count of its next chunks (2, 3) over that put's bytes.
    const baseline = await client.status();
    const id = await writtenStream(client, daemon.socket, 3);
    const other = await connect(daemon.socket);
    const reader = await client.openReader(id);
    try {
      // Blocks of 64 bytes around the cursor's, so that its block, once free, is a hole of its own.
      const fence: string[] = [];
      for (let i = 0; i < 64; i++) fence.push(await other.put(Buffer.alloc(8), { labels: { fence: String(i) } }));
      assert.ok((await reader.next()) !== undefined);
      // The prefetch the first chunk sent is answered (with the end) before status is.
      await client.status();
      const puts: Array<{ id: string; bytes: Buffer }> = [];
      for (let i = 0; i < 200; i++) {
        const bytes = Buffer.alloc(8, 0xa0 + (i % 16));
        puts.push({ id: await other.put(bytes, { labels: { victim: String(i) } }), bytes });
      }
      assert.ok((await reader.next()) !== undefined);
      assert.ok((await reader.next()) !== undefined);
      assert.equal(await reader.next(), undefined);
      for (const put of puts) {
        const got = (await other.get(put.id, { copy: true })) as Buffer;
        assert.deepEqual([...got], [...put.bytes], `blob ${put.id} changed after it was put`);
      }
      await Promise.all([...fence, ...puts.map((put) => put.id)].map((blob) => other.delete(blob)));
    } finally {
      await other.close();
    }
    await assertMemoryBack(client, baseline, 'the reader aborted its cursor once it had the end');
  });

  it('a reader asks for more as its caller gets the first chunk of a read; killed, it leaves the rest', async () => {
    const baseline = await client.status();
    const id = await writtenStream(client, daemon.socket, 100);
    // 17 chunks: all of the first read of 16 and the first of the second, which sent the third.
    const first = startChild('stream-reader.ts', [daemon.socket, id, '17']);
    await first.next();
    assert.equal((await first.next<ReaderReport>()).count, 17);
    assert.equal(await settled(() => queuedChunks(daemon, id), 100 - 3 * 16), 100 - 3 * 16);
    first.kill('SIGKILL');
    await first.exited;
    await settledStatus(client, (s) => s.clients <= 1);
    // Back in the queue: 15 of the second read and all 16 of the third, which the caller never got.
    assert.equal(await queuedChunks(daemon, id), 100 - 17);
    assert.deepEqual(await readToTheEnd(daemon.socket, id), { count: 83, sha256: streamHash(100, 'uniform', 17) });
    await assertMemoryBack(client, baseline, 'the chunks and the cursor were freed');
  });

  it('a reader that does not prefetch (an older client) reads every chunk and leaves exactly the rest', async () => {
    const baseline = await client.status();
    const id = await writtenStream(client, daemon.socket, 40);
    const older = await connect(daemon.socket);
    // What a client from before prefetch sends: a cursor, reads of 16 ahead, the next read after the last chunk.
    const channel = older['channel'];
    const opened = await channel.request('openReader', { id, cursor: true });
    assert.equal(opened.prefetch, true);
    const first = await channel.request('readChunk', { id, ahead: true, max: 16 });
    assert.equal(1 + (first.more?.length ?? 0), 16);
    const second = await channel.request('readChunk', { id, ahead: true, max: 16 });
    assert.equal(1 + (second.more?.length ?? 0), 16);
    // The first read's chunks but its last were freed; the caller got 3 of the second read.
    assert.equal(await queuedChunks(daemon, id), 8);
    await channel.request('closeReader', { id, unseen: 13 });
    await older.close();
    assert.deepEqual(await readToTheEnd(daemon.socket, id), { count: 21, sha256: streamHash(40, 'uniform', 19) });
    await assertMemoryBack(client, baseline);
  });

  it('chunks written by a writer that then stops reach the reader without a finish', async () => {
    const stream = await client.createStream('trellis::ByteStream');
    const other = await connect(daemon.socket);
    const writer = await other.openWriter(stream.id);
    // Fewer than a request's worth of chunks: sent once the writer waits, not held for more.
    for (let i = 0; i < 3; i++) await writer.write(Buffer.alloc(4096, i + 1));
    const reader = await client.openReader(stream.id);
    const got: number[] = [];
    for (let i = 0; i < 3; i++) got.push(((await reader.next()) as Buffer)[0]);
    assert.deepEqual(got, [1, 2, 3]);
    await writer.finish();
    assert.equal(await reader.next(), undefined);
    await other.close();
  });
});

describe("streams: a new reader's cursor", function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  before(async () => {
    // No put rings: the small puts below take blocks of the pool, as the cursor does.
    daemon = await startTestDaemon(['--size', '64MiB', '--put-ring-bytes', '0']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  it('says no chunk reached the caller until the reader writes it, whatever its block held before', async () => {
    const id = await writtenStream(client, daemon.socket, 10);
    // Holes of one block (64 bytes) that held [2139062143, 2139062143]: the cursor goes into one.
    const stale: string[] = [];
    for (let i = 0; i < 32; i++) {
      stale.push(await client.put(Buffer.alloc(8, 0x7f)));
      await client.put(Buffer.alloc(8, 0));
    }
    await client.delete(stale);
    // Closed during its first read, before it ever wrote its cursor.
    const reader = await client.openReader(id);
    const pending = reader.next();
    await reader.close();
    assert.equal(await pending, undefined);
    assert.deepEqual(await readToTheEnd(daemon.socket, id), { count: 10, sha256: streamHash(10, 'uniform') });
  });
});
