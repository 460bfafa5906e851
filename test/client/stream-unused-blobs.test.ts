/**
 * A finishing stream writer gives back the blobs it made ahead and the chunks recycled to it that
 * it did not use: in one abortBlobs request, not one abort each, and from a daemon that does not
 * know abortBlobs (an older one) with one abort each.
 */
import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import type { Channel } from '../../src/client/channel';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { onCleanup, tempPath } from '../fixtures/setup';
import { settledStatus } from '../fixtures/status';

const CHUNK_BYTES = 4096;

/** Requests of `kind` the daemon answered so far (from its /metrics). */
async function requestsOf(daemon: TestDaemon, kind: string): Promise<number> {
  const metrics = await (await fetch(`http://${daemon.httpEndpoint}/metrics`)).text();
  const line = metrics.split('\n').find((l) => l.startsWith(`trellis_requests_total{kind="${kind}"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/**
 * Writes two chunks of one size and finishes. The second write of a repeated size makes four
 * blobs ahead (streams.ts, SPARE_BATCH): the finish has those four to give back.
 */
async function writeTwoAndFinish(client: TrellisClient): Promise<string> {
  const stream = await client.createStream('trellis::ByteStream');
  const writer = await client.openWriter(stream.id);
  await writer.write(Buffer.alloc(CHUNK_BYTES, 1));
  await writer.write(Buffer.alloc(CHUNK_BYTES, 2));
  await writer.finish();
  return stream.id;
}

async function readAll(client: TrellisClient, id: string): Promise<number[]> {
  const firstBytes: number[] = [];
  for await (const chunk of await client.openReader(id)) firstBytes.push((chunk as Buffer)[0]);
  return firstBytes;
}

describe('streams: the blobs a finishing writer did not use', function () {
  it('go back in one abortBlobs request, and memory returns', async () => {
    const daemon = await startTestDaemon(['--size', '64MiB', '--http-port', '0']);
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const baseline = await client.status();
    const abortsBefore = await requestsOf(daemon, 'abort');
    const batchesBefore = await requestsOf(daemon, 'abortBlobs');
    const id = await writeTwoAndFinish(client);
    assert.equal((await requestsOf(daemon, 'abort')) - abortsBefore, 0, 'no abort of a single blob');
    assert.equal((await requestsOf(daemon, 'abortBlobs')) - batchesBefore, 1, 'one abortBlobs for all of them');
    // With the writer's client still connected: the daemon let go of them at the abort.
    const unread = await client.status();
    assert.equal(unread.memoryUsage - baseline.memoryUsage, 2 * CHUNK_BYTES, 'only the two chunks written stay');
    assert.deepEqual(await readAll(client, id), [1, 2]);
    const after = await settledStatus(client, (s) => s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
    assert.equal(after.objects, baseline.objects);
  });

  it('abortBlobs is all or none: a sealed or unknown id is named, and nothing is aborted', async () => {
    const daemon = await startTestDaemon(['--size', '64MiB']);
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const channel = (client as unknown as { channel: Channel }).channel;
    const open = await client.createBlob(64);
    const sealed = await client.createBlob(64);
    const sealedId = await sealed.seal();
    await assert.rejects(channel.request('abortBlobs', { ids: [open.id, sealedId] }), {
      code: 'AlreadySealed',
      message: `cannot abort ${sealedId}: it is already sealed`,
    });
    const missing = 'o00000000deadbeef';
    await assert.rejects(channel.request('abortBlobs', { ids: [open.id, missing] }), {
      code: 'ObjectNotFound',
      message: `cannot abort ${missing}: no such blob`,
    });
    await assert.rejects(channel.request('abortBlobs', { ids: 'x' as never }), {
      code: 'InvalidArgument',
      message: /abortBlobs: ids must be a list of at most 100000 object ids, got "x"/,
    });
    open.buffer.fill(7);
    assert.match(await open.seal(), /^o[0-9a-f]{16}$/, 'the open blob was not aborted');
  });

  it('from a daemon without abortBlobs, go back one abort each', async () => {
    const socket = tempPath('no-abort-blobs.sock');
    const older = startChild('daemon-without-kinds.ts', [socket, 'abortBlobs']);
    await older.next();
    const client = await connect(socket);
    onCleanup(() => client.close());
    const baseline = await client.status();
    const id = await writeTwoAndFinish(client);
    const unread = await client.status();
    assert.equal(unread.memoryUsage - baseline.memoryUsage, 2 * CHUNK_BYTES, 'only the two chunks written stay');
    assert.deepEqual(await readAll(client, id), [1, 2]);
    const after = await settledStatus(client, (s) => s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
  });
});
