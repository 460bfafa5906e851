/**
 * What a daemon that runs for months keeps of the requests it answered: a small value it stores
 * (a metadata field with bytes) must hold its own bytes, not the socket chunk it arrived in, and
 * its own strings, not slices of the request's; an object got and released keeps nothing more.
 * The daemon runs in a child that reports its memory after full garbage collections
 * (fixtures/children/measured-daemon.ts). Bounds are generous: they catch a retained chunk, slice
 * or set per object, not a few bytes.
 */
import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import { tempPath, onCleanup } from '../fixtures/setup';
import { startWorker, type Worker } from '../fixtures/worker';

const VALUES = 200;
const VALUE_BYTES = 100;
/** Bytes riding in the same frame as each value: copied into shared memory, never kept in the heap. */
const PAD_BYTES = 48 * 1024;
/** Room for the objects' own bookkeeping (ids, maps, views) beside the values' bytes. */
const SLACK_BYTES = 1024 * 1024;

const arrayBuffersOf = async (daemon: Worker) => (await daemon.run<NodeJS.MemoryUsage>('memory')).arrayBuffers;

describe('daemon memory: what stored small values keep', function () {
  it('values that came in large frames hold their own bytes, not the frames', async () => {
    const socket = tempPath('measured.sock');
    const daemon = await startWorker(socket, { script: 'measured-daemon.ts' });
    const client = await connect(socket);
    onCleanup(() => client.close());
    // A first round so the connection, pools and code are warm before the baseline.
    await client.createMetadata({ typename: 'test::Padded', data: Buffer.alloc(VALUE_BYTES) });
    const before = await arrayBuffersOf(daemon);
    for (let i = 0; i < VALUES; i++) {
      const data = Buffer.alloc(VALUE_BYTES, i);
      // One frame of ~48 KiB: the value's bytes and a member stored in shared memory.
      await client.createMetadata(
        { typename: 'test::Padded', data },
        { inlineMembers: { pad: Buffer.alloc(PAD_BYTES, i) } },
      );
    }
    const grown = (await arrayBuffersOf(daemon)) - before;
    assert.ok(
      grown < VALUES * VALUE_BYTES + SLACK_BYTES,
      `the daemon's array buffers grew by ${grown} bytes for ${VALUES} values of ${VALUE_BYTES} bytes ` +
        `(each frame was ${PAD_BYTES} bytes)`,
    );
  });

  /** Small objects stored (and got) in the tests below; a hundred at a time in flight. */
  const OBJECTS = 100_000;
  const IN_FLIGHT = 100;

  /** The daemon's memory after `work`, less before it, per object: heap and array buffers. */
  const perObject = async (daemon: Worker, work: () => Promise<void>) => {
    const before = await daemon.run<NodeJS.MemoryUsage>('memory');
    await work();
    const after = await daemon.run<NodeJS.MemoryUsage>('memory');
    return {
      heap: (after.heapUsed - before.heapUsed) / OBJECTS,
      arrayBuffers: (after.arrayBuffers - before.arrayBuffers) / OBJECTS,
    };
  };
  const inBatches = async (each: (i: number) => Promise<unknown>) => {
    for (let i = 0; i < OBJECTS; i += IN_FLIGHT)
      await Promise.all(Array.from({ length: IN_FLIGHT }, (_, j) => each(i + j)));
  };
  /** A measured daemon, a client, and a second connection whose puts and gets are all requests. */
  const measured = async () => {
    const socket = tempPath('measured.sock');
    const daemon = await startWorker(socket, {
      script: 'measured-daemon.ts',
      args: [JSON.stringify({ size: '1GiB' })],
      answerTimeoutMs: 60_000,
    });
    const client = await connect(socket);
    const over = await connect(socket);
    onCleanup(() => Promise.all([client.close(), over.close()]));
    (over as unknown as { putRing?: null }).putRing = null;
    (over as unknown as { useReadIndex(reader: undefined): void }).useReadIndex(undefined);
    return { daemon, client, over };
  };
  const warm = async (putter: TrellisClient, reader: TrellisClient, value: (i: number) => unknown) => {
    for (let i = 0; i < 200; i++) {
      const id = await putter.put(value(i));
      await reader.get(id);
      await reader.release(id);
    }
  };

  it('100,000 small Buffers put and got: each costs the daemon well under 640 B, and a get and release adds none', async function () {
    this.timeout(180_000);
    const { daemon, client, over } = await measured();
    const bytes = (i: number) => Buffer.alloc(100, i);
    await warm(client, over, bytes);
    const ids: string[] = [];
    const put = await perObject(daemon, async () => {
      await inBatches(async (i) => (ids[i] = await client.put(bytes(i))));
      await over.exists(ids[0]);
    });
    // Got through the daemon (a reference each), released a batch at a time.
    const got = await perObject(daemon, async () => {
      for (let i = 0; i < OBJECTS; i += IN_FLIGHT) {
        const batch = ids.slice(i, i + IN_FLIGHT);
        await Promise.all(batch.map((id) => over.get(id)));
        await over.release(batch);
      }
    });
    assert.ok(put.heap < 640, `${put.heap.toFixed(0)} B of heap per Buffer put`);
    assert.ok(got.heap < 48, `${got.heap.toFixed(0)} B of heap kept per Buffer got and released`);
    assert.ok(put.arrayBuffers + got.arrayBuffers < 8, 'no array buffers per object');
  });

  it('100,000 small Values put over the socket: each keeps its own strings and bytes, well under 768 B', async function () {
    this.timeout(180_000);
    const { daemon, over } = await measured();
    // 60 characters: its frame passes 140 B, where msgpackr hands out strings as slices of one.
    const value = (i: number) => ({ i, text: 'x'.repeat(60) });
    await warm(over, over, value);
    const put = await perObject(daemon, async () => {
      await inBatches((i) => over.put(value(i)));
    });
    assert.ok(put.heap < 768, `${put.heap.toFixed(0)} B of heap per Value put`);
    // The Value's 72 bytes of msgpack, its own.
    assert.ok(put.arrayBuffers < 2 * 72, `${put.arrayBuffers.toFixed(0)} B of array buffers per Value put`);
  });

  it('100,000 labelled Buffers with a parent put over the socket: labels and parents are strings of their own', async function () {
    this.timeout(180_000);
    const { daemon, over } = await measured();
    const parent = await over.put(Buffer.alloc(100));
    // The note passes msgpackr's 140 B: the frame's strings are extracted as one, and a label
    // value kept as its slice would keep the whole (about 230 characters) per object.
    const note = 'n'.repeat(120);
    const labelled = (i: number) =>
      over.put(Buffer.alloc(100, i), {
        labels: { run: `experiment-${String(i).padStart(9, '0')}`, note },
        parents: [parent],
      });
    for (let i = 0; i < 200; i++) await labelled(i);
    const put = await perObject(daemon, () => inBatches(labelled));
    // About 670 B (900 with the label values and the parent's id kept as slices of the requests).
    assert.ok(put.heap < 800, `${put.heap.toFixed(0)} B of heap per labelled Buffer put`);
  });
});
