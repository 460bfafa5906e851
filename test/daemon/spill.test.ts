import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { connect, type TrellisClient } from '../../src/index';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';
import { settledStatus } from '../fixtures/status';

const MiB = 1024 * 1024;
const digest = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Puts a blob of `size` bytes filled from `seed`, releases it, and returns its id and digest. */
async function putReleased(client: TrellisClient, size: number, seed: number): Promise<{ id: string; sha: string }> {
  const writer = await client.createBlob(size);
  for (let i = 0; i < size; i += 4096) writer.buffer[i] = (seed * 31 + i / 4096) & 0xff;
  writer.buffer.writeUInt32LE(seed, 0);
  const sha = digest(writer.buffer);
  const id = await writer.seal();
  await client.release(id);
  return { id, sha };
}

describe('spilling: blobs move to --spill-dir under memory pressure and come back on get', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  let spillDir: string;

  beforeEach(async () => {
    spillDir = tempPath('spill');
    daemon = await startTestDaemon(['--size', '64MiB', '--spill-dir', spillDir]);
    client = await connect(daemon.socket);
  });
  afterEach(async () => {
    await client.close();
    await daemon.stop();
  });

  it('puts and releases 3x the limit, then reads everything back equal, in another process too', async () => {
    const blobs = [];
    for (let seed = 0; seed < 12; seed++) blobs.push(await putReleased(client, 16 * MiB, seed));
    const status = await client.status();
    assert.ok(status.memoryUsage <= 64 * MiB, `resident bytes ${status.memoryUsage} stay within the limit`);
    assert.ok(status.spilled.objects >= 8, `at least 8 of 12 blobs spilled, got ${status.spilled.objects}`);
    assert.equal(status.spilled.bytes, status.spilled.objects * 16 * MiB);
    assert.ok(fs.readdirSync(spillDir).length >= 8, 'the spilled bytes are files in the spill dir');

    const reader = startChild('blob-digests.ts', [daemon.socket, ...blobs.map((blob) => blob.id)]);
    const digests = await reader.next<Record<string, string>>();
    for (const blob of blobs) assert.equal(digests[blob.id], blob.sha, `blob ${blob.id} read back equal`);
    assert.equal(await reader.exited, 0);
    // And here, under the same ids, after those reads spilled others again.
    for (const blob of blobs.slice(0, 3)) {
      const got = await client.getBlob(blob.id);
      assert.equal(digest(got.buffer), blob.sha);
      await client.release(blob.id);
    }
  });

  it('is OutOfMemory only when clients hold everything, naming the limit', async () => {
    const held = [];
    for (let seed = 0; seed < 4; seed++) {
      const { id } = await putReleased(client, 15 * MiB, seed);
      held.push(await client.getBlob(id));
    }
    await assert.rejects(client.createBlob(16 * MiB), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'OutOfMemory');
      assert.match(error.message, /64 MiB limit/);
      return true;
    });
    for (const blob of held) await client.release(blob.id);
    // Released, they can go: the same request now fits.
    const writer = await client.createBlob(16 * MiB);
    await writer.abort();
  });

  it('keeps answering another client while a large spill runs', async () => {
    const other = await connect(daemon.socket);
    try {
      const small = await other.put(Buffer.from('small'));
      for (let seed = 0; seed < 3; seed++) await putReleased(client, 20 * MiB, seed);
      let answered = 0;
      let spillDone = false;
      const spilling = client.createBlob(48 * MiB).then(async (writer) => {
        spillDone = true;
        await writer.abort();
      });
      const ask = async () => {
        while (!spillDone && answered < 100_000) {
          await other.get(small);
          if (!spillDone) answered++;
        }
      };
      await Promise.all([spilling, ask()]);
      assert.ok(answered > 0, 'small requests completed while the spill ran');
    } finally {
      await other.close();
    }
  });

  it('removes spill files and deletes a spilled object cleanly', async () => {
    const blobs = [];
    for (let seed = 0; seed < 8; seed++) blobs.push(await putReleased(client, 16 * MiB, seed));
    const before = (await client.status()).spilled.objects;
    assert.ok(before > 0);
    await client.delete(blobs[0].id);
    const after = await settledStatus(client, (status) => status.spilled.objects === before - 1);
    assert.equal(after.spilled.objects, before - 1);
    await assert.rejects(client.getBlob(blobs[0].id), { code: 'ObjectNotFound' });
  });

  it('a restarted daemon deletes what was spilled before', async () => {
    for (let seed = 0; seed < 8; seed++) await putReleased(client, 16 * MiB, seed);
    assert.ok(fs.readdirSync(spillDir).length > 0);
    await client.close();
    await daemon.stop();
    daemon = await startTestDaemon(['--size', '64MiB', '--spill-dir', spillDir]);
    client = await connect(daemon.socket);
    assert.deepEqual(fs.readdirSync(spillDir), []);
  });
});
