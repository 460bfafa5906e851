/**
 * Metadata that lies, made by one client with createMetadata over real blobs and got by another
 * process: every get throws a TrellisError naming the object (TypeMismatch), none crashes, hangs
 * or grows the reader without bound, the daemon keeps serving, and deleting the lies gives every
 * byte back. The test process is the hostile writer; a child process is the victim reader.
 */
import * as assert from 'node:assert/strict';
import { Dictionary, Int32, Table, Utf8, vectorFromArray } from 'apache-arrow';
import { connect, type TrellisClient as Client } from '../../src/index';
import { planArrow, type ArrowLayout } from '../../src/types/arrow-layout';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { onCleanup } from '../fixtures/setup';
import { settledStatus } from '../fixtures/status';

interface Outcome {
  id: string;
  outcome: 'resolved' | 'threw' | 'timeout';
  name?: string;
  code?: string;
  message?: string;
}

interface Lie {
  what: string;
  make: (client: Client) => Promise<string>;
  message: RegExp;
}

/** Readers may grow by mapping segments and decoding small things; a lie must not cost more. */
const MAX_READER_GROWTH = 256 * 1024 * 1024;

const ROWS = 1000;

function sampleTable(): Table {
  return new Table({
    price: vectorFromArray(Float64Array.from({ length: ROWS }, (_, i) => i * 0.5)),
    count: vectorFromArray(Int32Array.from({ length: ROWS }, (_, i) => i)),
    label: vectorFromArray(
      Array.from({ length: ROWS }, (_, i) => `row ${i}`),
      new Utf8(),
    ),
    kind: vectorFromArray(
      Array.from({ length: ROWS }, (_, i) => ['a', 'b', 'c'][i % 3]),
      new Dictionary(new Utf8(), new Int32()),
    ),
  });
}

/** Every object the lies were made of, some of them left out of the lies' members: deleted at the end. */
const made: string[] = [];

async function sealedBlob(client: Client, bytes: Uint8Array, typename?: string): Promise<string> {
  const [writer] = await client.createBlobs([bytes.byteLength], { typename });
  writer.buffer.set(bytes);
  const id = await writer.seal();
  made.push(id);
  return id;
}

/**
 * A DataFrame stored honestly, then described by an edited layout (and, if given, other
 * members): the blobs are real, only the metadata lies.
 */
async function lyingFrame(
  client: Client,
  edit: (layout: ArrowLayout, members: Record<string, string>) => void,
  typename = 'trellis::DataFrame',
): Promise<string> {
  const { buffers, layout } = planArrow(sampleTable());
  const members: Record<string, string> = {};
  for (let i = 0; i < buffers.length; i++) members[`b${i}`] = await sealedBlob(client, buffers[i]);
  edit(layout, members);
  return client.createMetadata({ typename, members, layout, numRows: ROWS, numColumns: 4 });
}

/** The stored-buffer index of a column's buffer slot (0 offsets, 1 values, 2 validity). */
function bufferOf(layout: ArrowLayout, column: number, slot: number): number {
  return layout.batches[0].node.children![column].buffers[slot]!;
}

const LIES: Lie[] = [
  {
    what: 'a DataFrame whose buffer members are all one 8-byte blob',
    make: async (client) => {
      const tiny = await sealedBlob(client, new Uint8Array(8));
      return lyingFrame(client, (_, members) => {
        for (const key of Object.keys(members)) members[key] = tiny;
      });
    },
    message: /batch 0\.\w+ \(.*, 1000 rows\) needs \d+ .*; it\w* (buffer )?holds \d+/,
  },
  {
    what: 'a DataFrame whose layout is from a future version',
    make: (client) => lyingFrame(client, (layout) => (layout.version = 99)),
    message: /arrow layout version 99/,
  },
  {
    what: 'a DataFrame whose batch claims 2^40 rows',
    make: (client) => lyingFrame(client, (layout) => (layout.batches[0].node.length = 2 ** 40)),
    message: /batch 0 \(Struct.*needs 1099511627776 rows of child 0/,
  },
  {
    what: 'a DataFrame column of negative length',
    make: (client) => lyingFrame(client, (layout) => (layout.batches[0].node.children![0].length = -5)),
    message: /batch 0\.price \(Float64\) has length -5/,
  },
  {
    what: 'a Float64 column longer than its values',
    make: (client) => lyingFrame(client, (layout) => (layout.batches[0].node.children![0].length = ROWS * 2)),
    message: /batch 0\.price \(Float64, 2000 rows\) needs 2000 values elements; its buffer holds 1000/,
  },
  {
    what: 'a Float64 column whose values buffer is said to be bytes (a wrong dtype)',
    make: (client) => lyingFrame(client, (layout) => (layout.bufferTypes[bufferOf(layout, 0, 1)] = 'Uint8Array')),
    message: /batch 0\.price \(Float64, 1000 rows\) has a Uint8Array values buffer, not a Float64Array/,
  },
  {
    what: 'a Utf8 column whose offsets reach past its data',
    make: (client) =>
      lyingFrame(client, (layout, members) => {
        // The label column's offsets, viewed as its data: the last offset is past those bytes.
        members[`b${bufferOf(layout, 2, 1)}`] = members[`b${bufferOf(layout, 1, 1)}`];
        layout.batches[0].node.children![2].length = ROWS;
        layout.bufferTypes[bufferOf(layout, 2, 1)] = 'Uint8Array';
        members[`b${bufferOf(layout, 2, 1)}`] = members[`b${bufferOf(layout, 2, 0)}`].slice(0);
      }),
    message: /batch 0\.label \(Utf8, 1000 rows\) has offsets from 0 to \d+, outside its \d+ data bytes/,
  },
  {
    what: 'a dictionary column naming a dictionary that does not exist',
    make: (client) => lyingFrame(client, (layout) => (layout.batches[0].node.children![3].dictionary = 7)),
    message: /batch 0\.kind refers to dictionary 7 of 1/,
  },
  {
    what: 'a column with more nulls than rows',
    make: (client) => lyingFrame(client, (layout) => (layout.batches[0].node.children![1].nullCount = ROWS + 1)),
    message: /batch 0\.count \(Int32, 1000 rows\) claims 1001 nulls/,
  },
  {
    what: 'a column with nulls and no validity bitmap',
    make: (client) =>
      lyingFrame(client, (layout) => {
        layout.batches[0].node.children![1].nullCount = 3;
        layout.batches[0].node.children![1].buffers[2] = null;
      }),
    message: /batch 0\.count \(Int32, 1000 rows\) claims 3 nulls but has no validity bitmap/,
  },
  {
    what: 'a struct with a child missing',
    make: (client) => lyingFrame(client, (layout) => layout.batches[0].node.children!.pop()),
    message: /batch 0 \(Struct.*\) has 3 children; its type has 4/,
  },
  {
    what: 'a DataFrame missing a buffer member',
    make: (client) => lyingFrame(client, (_, members) => delete members.b0),
    message: /has no member "b0"/,
  },
  {
    what: 'a RecordBatch whose layout holds a table',
    make: (client) => lyingFrame(client, () => undefined, 'trellis::RecordBatch'),
    message: /is a trellis::RecordBatch but its arrow layout holds a table/,
  },
  {
    what: 'a Tensor<float64> whose shape claims 1e9 elements over 8 bytes',
    make: async (client) => {
      const data = await sealedBlob(client, new Uint8Array(8));
      return client.createMetadata({
        typename: 'trellis::Tensor<float64>',
        members: { data },
        dtype: 'float64',
        shape: [1e9],
      });
    },
    message: /shape \[1000000000\] does not hold the 1 float64s of its data/,
  },
  {
    what: 'a Tensor whose dtype is not the one its typename names',
    make: async (client) => {
      const data = await sealedBlob(client, new Uint8Array(8));
      return client.createMetadata({
        typename: 'trellis::Tensor<float64>',
        members: { data },
        dtype: 'int8',
        shape: [8],
      });
    },
    message: /dtype int8 is not the one its typename names/,
  },
  {
    what: 'a Tensor of 7 bytes of float32',
    make: async (client) => {
      const data = await sealedBlob(client, new Uint8Array(7));
      return client.createMetadata({
        typename: 'trellis::Tensor<float32>',
        members: { data },
        dtype: 'float32',
        shape: [1],
      });
    },
    message: /its data holds 7 bytes, not a whole number of float32s/,
  },
  {
    what: 'a Value whose msgpack bytes are malformed (a string cut short)',
    make: (client) =>
      client.createMetadata({ typename: 'trellis::Value', data: Buffer.from([0xd9, 0x10, 0x61, 0x62]) }),
    message: /Unexpected end of MessagePack data/,
  },
  {
    what: 'a Value whose msgpack claims an array of 2^32 - 1 items in 5 bytes',
    make: (client) =>
      client.createMetadata({ typename: 'trellis::Value', data: Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]) }),
    message: /Unexpected end of MessagePack data/,
  },
  {
    what: 'a Value whose inline data is not bytes',
    make: (client) => client.createMetadata({ typename: 'trellis::Value', data: 'hello' }),
    message: /its inline data is string, not bytes/,
  },
  {
    what: 'a Sequence whose length claims 1e12 items over one member',
    make: async (client) => {
      const item = await client.put({ a: 1 });
      made.push(item);
      return client.createMetadata({ typename: 'trellis::Sequence', members: { 0: item }, length: 1e12 });
    },
    message: /length 1000000000000 but no member "1"/,
  },
  {
    what: 'a Sequence of negative length',
    make: (client) => client.createMetadata({ typename: 'trellis::Sequence', length: -1 }),
    message: /length -1 is not a count/,
  },
  {
    what: 'a ShareableList that is a metadata object, with no bytes',
    make: (client) => client.createMetadata({ typename: 'trellis::ShareableList' }),
    message: /no bytes of its own/,
  },
  {
    what: 'a ShareableList blob whose header claims 2^32 - 1 slots',
    make: (client) => {
      const header = Buffer.alloc(64);
      header.writeUInt32LE(0x4c535254, 0);
      header.writeUInt16LE(1, 4);
      header.writeUInt32LE(0xffffffff, 8);
      return sealedBlob(client, header, 'trellis::ShareableList');
    },
    message: /claims 4294967295 slots, more than its 64 bytes can hold/,
  },
];

describe('hostile metadata', () => {
  let daemon: TestDaemon;

  before(async () => {
    daemon = await startTestDaemon(['--size', '64MiB']);
  });

  after(async () => {
    await daemon.stop();
  });

  it('every lie is a TypeMismatch naming the object in another process; the daemon serves on and memory comes back', async function () {
    this.timeout(120_000);
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const baseline = (await settledStatus(client, () => true)).memoryUsage;

    const ids: string[] = [];
    for (const lie of LIES) ids.push(await lie.make(client));

    const reader = startChild('hostile-reader.ts', [daemon.socket, ...ids]);
    const report = await reader.next<{ outcomes: Outcome[]; rssGrowth: number }>(90_000);
    assert.equal(await reader.exited, 0, reader.stderr());

    LIES.forEach((lie, i) => {
      const outcome = report.outcomes[i];
      assert.equal(outcome.outcome, 'threw', `${lie.what}: the get ${outcome.outcome}`);
      assert.equal(outcome.name, 'TrellisError', `${lie.what}: threw ${outcome.name}: ${outcome.message}`);
      assert.equal(outcome.code, 'TypeMismatch', `${lie.what}: ${outcome.code}: ${outcome.message}`);
      assert.ok(
        outcome.message!.includes(ids[i]),
        `${lie.what}: the message does not name ${ids[i]}: ${outcome.message}`,
      );
      assert.match(outcome.message!, lie.message, `${lie.what}: ${outcome.message}`);
    });
    assert.ok(report.rssGrowth < MAX_READER_GROWTH, `the reader grew by ${report.rssGrowth} bytes`);

    // The daemon serves on, to the hostile client and to others.
    assert.deepEqual(await client.get(await client.put({ still: 'serving' })), { still: 'serving' });
    const other = await connect(daemon.socket);
    onCleanup(() => other.close());
    assert.equal((await other.status()).instanceId, client.instanceId);

    await client.delete(ids, { deep: true, force: true });
    // Blobs the lies left out of their members were not deleted with them.
    for (const id of made) if (await client.exists(id)) await client.delete(id, { force: true });
    await other.close();
    await client.close();
    const watcher = await connect(daemon.socket);
    onCleanup(() => watcher.close());
    const status = await settledStatus(watcher, ({ memoryUsage }) => memoryUsage === baseline);
    assert.equal(
      status.memoryUsage,
      baseline,
      `memory in use went from ${baseline} and stayed at ${status.memoryUsage}`,
    );
  });

  it('refuses a tree that would expand without bound (each level naming the one below twice)', async () => {
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    let below = await client.put(Buffer.from('leaf'));
    const made = [below];
    let refused: (Error & { code?: string }) | undefined;
    for (let level = 0; level < 40 && !refused; level++) {
      try {
        below = await client.createMetadata({ typename: 'test::Doubling', members: { left: below, right: below } });
        made.push(below);
      } catch (error) {
        refused = error as Error & { code?: string };
      }
    }
    assert.equal(refused?.code, 'InvalidArgument');
    assert.match(refused!.message, /expands to \d+ nodes .* over the limit of 65536/);
    // The deepest object allowed still describes itself quickly, and the daemon serves on.
    assert.equal((await client.getMeta(below)).typename, 'test::Doubling');
    await client.delete(below, { deep: true, force: true });
    await client.close();
  });
});
