/**
 * A BlobWriter after it is finished: once sealed, its buffer is the read-only view any reader
 * gets (so the creator can checksum what it sealed, but not change it); any other use of a
 * finished writer is a TrellisError naming the blob.
 */
import * as assert from 'node:assert/strict';
import { connect, type Client } from '../../src/index';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { patternHash } from '../fixtures/pattern';
import { onCleanup } from '../fixtures/setup';
import { expectRejects, expectThrows } from '../fixtures/trellis-errors';
import { startWorker } from '../fixtures/worker';

const MiB = 1024 * 1024;

describe('a blob writer after seal or abort', function () {
  let daemon: TestDaemon;
  let client: Client;
  before(async () => {
    daemon = await startTestDaemon(['--size', '64MiB']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  it('reads back, in the process that sealed it, the bytes it wrote, as a view of shared memory', async () => {
    const [writer, reader] = await Promise.all([startWorker(daemon.socket), startWorker(daemon.socket)]);
    const size = 3 * MiB + 5;
    type ReadBack = { id: string; size: number; sha256: string; shared: boolean };
    const sealed = await writer.run<ReadBack>('putAndReadBack', { size, seed: 11 });
    assert.equal(sealed.size, size);
    assert.equal(sealed.sha256, patternHash(size, 11));
    assert.equal(sealed.shared, true, 'the sealed writer buffer is a view of shared memory');
    const got = await reader.run<{ sha256: string }>('get', { id: sealed.id });
    assert.equal(got.sha256, sealed.sha256);
  });

  it('is the same memory getBlob views, read-only, while a Buffer taken before the seal is detached', async () => {
    const writer = await client.createBlob(100);
    const before = writer.buffer;
    before.fill(7);
    const id = await writer.seal();
    assert.equal(before.length, 0, 'the writable bytes are cut off at the seal');
    assert.ok(client.isSharedMemory(writer.buffer));
    assert.deepEqual([...writer.buffer], new Array(100).fill(7));
    assert.equal(writer.buffer, writer.buffer, 'one view, made once');
    const blob = await client.getBlob(id);
    assert.equal(writer.buffer.buffer, blob.buffer.buffer, 'the same read-only ArrayBuffer as getBlob');
    assert.equal(writer.buffer.byteOffset, blob.buffer.byteOffset);
  });

  it('a process that writes through its sealed writer buffer dies with SIGSEGV and the bytes survive', async () => {
    const [writer, reader] = await Promise.all([startWorker(daemon.socket), startWorker(daemon.socket)]);
    const { id } = await writer.run<{ id: string }>('putAndReadBack', { size: 8192, seed: 5 });
    writer.child.send({ op: 'scribbleSealedWriter', id });
    await writer.child.next(); // it is about to write
    const outcome = await Promise.race([writer.child.exited, writer.child.next().then(() => 'wrote')]);
    assert.equal(outcome, 'SIGSEGV', 'the read-only mapping faults on the first write');
    const after = await reader.run<{ sha256: string }>('get', { id });
    assert.equal(after.sha256, patternHash(8192, 5));
  });

  it('seal or abort again after a seal is AlreadySealed, naming the blob', async () => {
    const writer = await client.createBlob(10);
    const sealing = writer.seal();
    // Asked before the first seal is done (a small one, through the put ring, is done within a tick).
    const sealAgain = writer.seal();
    const abort = writer.abort();
    const underWay = 'a seal() of it is already under way';
    await expectRejects(sealAgain, 'AlreadySealed', `cannot seal blob ${writer.id}: ${underWay}`);
    await expectRejects(abort, 'AlreadySealed', `cannot abort blob ${writer.id}: ${underWay}`);
    await sealing;
    await expectRejects(writer.seal(), 'AlreadySealed', `cannot seal blob ${writer.id}: it was already sealed`);
    await expectRejects(writer.abort(), 'AlreadySealed', `cannot abort blob ${writer.id}: it was already sealed`);
    assert.equal(await client.exists(writer.id), true);
  });

  it('after an abort, buffer, seal and abort are ObjectNotFound, naming the blob', async () => {
    const writer = await client.createBlob(10);
    await writer.abort();
    expectThrows(() => writer.buffer, 'ObjectNotFound', `blob ${writer.id} was aborted: its buffer is gone`);
    await expectRejects(writer.seal(), 'ObjectNotFound', `cannot seal blob ${writer.id}: it was aborted`);
    await expectRejects(writer.abort(), 'ObjectNotFound', `cannot abort blob ${writer.id}: it was aborted`);
  });

  it('after a seal that keeps no reference (sealBlob), buffer is InvalidArgument pointing at getBlob', async () => {
    const writer = await client.createBlob(3);
    writer.buffer.write('abc');
    const id = await client.sealBlob(writer);
    const pointer = new RegExp(`blob ${id} was sealed without a reference .*client\\.getBlob\\('${id}'\\)`);
    expectThrows(() => writer.buffer, 'InvalidArgument', pointer);
    assert.equal((await client.getBlob(id)).buffer.toString(), 'abc');
  });

  it('a seal that fails leaves the writer open, so seal is tried again rather than refused', async () => {
    const other = await connect(daemon.socket);
    onCleanup(() => other.close());
    const writer = await other.createBlob(4);
    writer.buffer.write('abcd');
    await other.close();
    await expectRejects(writer.seal(), 'ConnectionClosed', 'the client was closed');
    assert.equal(writer.sealed, false);
    // Its bytes went with the client (the daemon frees unsealed blobs then): nothing writes them now.
    assert.equal(writer.buffer.byteLength, 0, 'the writable bytes are detached');
    await expectRejects(writer.seal(), 'ConnectionClosed', 'the client was closed');
  });
});

describe('a blob writer whose client closed', function () {
  let daemon: TestDaemon;
  before(async () => {
    daemon = await startTestDaemon(['--size', '64MiB']);
  });
  after(async () => {
    await daemon.stop();
  });

  // The daemon frees a client's unsealed blobs when it goes; a writer still open in that process
  // kept its writable ArrayBuffer over them, so its writes landed in whatever took the block next.
  for (const size of [64, 8192]) {
    it(`of ${size} bytes (${size <= 4096 ? 'put ring' : 'createBlobs'}) writes nothing into a later put's bytes`, async () => {
      const writer = await connect(daemon.socket);
      const other = await connect(daemon.socket);
      try {
        const open = await writer.createBlob(size);
        open.buffer.fill(0x11);
        await writer.close();
        // Through the socket (labels), so that the puts take blocks of the pool as the writer's was.
        const puts: Array<{ id: string; bytes: Buffer }> = [];
        for (let i = 0; i < 64; i++) {
          const bytes = Buffer.alloc(size, 0xa0 + (i % 16));
          puts.push({ id: await other.put(bytes, { labels: { victim: String(i) } }), bytes });
        }
        // A write after the close: a detached buffer takes none of it.
        try {
          open.buffer.fill(0xee);
        } catch {
          // Refusing the write is as good.
        }
        for (const put of puts) {
          const got = (await other.get(put.id, { copy: true })) as Buffer;
          assert.ok(got.equals(put.bytes), `blob ${put.id} changed after it was put`);
        }
        await Promise.all(puts.map((put) => other.delete(put.id)));
      } finally {
        await other.close();
      }
    });
  }
});
