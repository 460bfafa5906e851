/**
 * SealedListReader, the fast path that frozen lists read through, against the layout's general
 * reader (ListBytes.itemAt) and against the values written: every item kind, mixed kinds over
 * several pages, empty lists, large strings and bytes, iteration against get, indexes out of
 * range, and slots the fast path hands to the general reader (corrupt or unusual ones).
 */
import * as assert from 'node:assert/strict';
import { connect, ShareableList, type Client } from '../../src/index';
import {
  encodeItem,
  initialCapacity,
  listBytes,
  ListBytes,
  type EncodedItem,
  type ShareableItem,
} from '../../src/types/shareable-list-layout';
import { SealedListReader } from '../../src/types/shareable-list-reader';
import { describeItem, generatedItem, generatedItems } from '../fixtures/children/shareable-list-items';
import { startTestDaemon } from '../fixtures/daemon';
import { onCleanup } from '../fixtures/setup';
import { expectThrows } from '../fixtures/trellis-errors';

/** The bytes of a list of `items`, as ShareableList.create lays them out, in memory of its own (8-aligned). */
function listOf(items: readonly unknown[]): Buffer {
  const encoded = items.map((value) => encodeItem(value) as EncodedItem);
  const capacities = encoded.map((item) => initialCapacity(item, 0));
  const bytes = Buffer.alloc(listBytes(capacities));
  const list = ListBytes.format(bytes, 'test', capacities);
  encoded.forEach((item, i) => list.writeAt(i, item));
  return bytes;
}

function readerOf(bytes: Buffer): { reader: SealedListReader; general: ListBytes } {
  const general = ListBytes.open(bytes, 'test');
  const reader = SealedListReader.over(general);
  assert.ok(reader, 'an 8-aligned sealed list gets the fast reader');
  return { reader, general };
}

/** What an item reads back as: safe-integer bigints come back as numbers. */
function expectedOf(value: unknown): string {
  if (
    typeof value === 'bigint' &&
    value >= BigInt(-Number.MAX_SAFE_INTEGER) &&
    value <= BigInt(Number.MAX_SAFE_INTEGER)
  )
    return describeItem(Number(value));
  return describeItem(value);
}

const EVERY_KIND: ShareableItem[] = [
  null,
  false,
  true,
  0,
  -1,
  7,
  2 ** 31,
  -(2 ** 31) - 1,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  2n ** 53n,
  -(2n ** 53n),
  2n ** 63n - 1n,
  -(2n ** 63n),
  5n,
  1.5,
  -0,
  NaN,
  Infinity,
  -Infinity,
  Number.MIN_VALUE,
  '',
  'a',
  'plain ascii text',
  'é',
  'ünïcödé 漢字',
  '🎉 surrogate pairs 🎉',
  Buffer.alloc(0),
  Buffer.from([1, 2, 3]),
  new Uint8Array([250, 251]),
];

describe('SealedListReader', () => {
  it('reads every item kind as written, and as the general reader does', () => {
    const { reader, general } = readerOf(listOf(EVERY_KIND));
    assert.equal(reader.count, EVERY_KIND.length);
    EVERY_KIND.forEach((value, i) => {
      const fast = reader.itemAt(i);
      assert.equal(describeItem(fast), expectedOf(value).replace('uint8array:', 'bytes:'), `item ${i}`);
      assert.equal(describeItem(fast), describeItem(general.itemAt(i)), `item ${i} against ListBytes.itemAt`);
    });
  });

  it('returns bytes as views of the list, and large strings and bytes whole', () => {
    const long = 'x'.repeat(100_000) + 'end';
    const longUtf8 = 'ü漢'.repeat(30_000);
    const block = Buffer.alloc(200_000, 0x5a);
    const bytes = listOf([long, block, longUtf8]);
    const { reader } = readerOf(bytes);
    assert.equal(reader.itemAt(0), long);
    assert.equal(reader.itemAt(2), longUtf8);
    const view = reader.itemAt(1) as Buffer;
    assert.ok(Buffer.isBuffer(view));
    assert.ok(view.equals(block));
    assert.equal(view.buffer, bytes.buffer, 'a view of the list, not a copy');
    assert.ok(view.byteOffset >= bytes.byteOffset && view.byteOffset + view.length <= bytes.byteOffset + bytes.length);
  });

  it('gives the general reader what it does not read itself: corrupt slots throw, unaligned payloads read', () => {
    const bytes = listOf(['ok', 1.25, 3, 'tail']);
    const { reader } = readerOf(bytes);
    // Slot 1: its float moved to an offset that is not 8-aligned (still inside the list).
    const floatSlot = 16 + 16 * 1;
    const offset = bytes.readUInt32LE(floatSlot + 8);
    bytes.writeDoubleLE(1.25, offset + 4 - 8);
    bytes.writeUInt32LE(offset - 4, floatSlot + 8);
    assert.equal(reader.itemAt(1), 1.25);
    // Slot 2: an unknown tag. Slot 3: a length past the end.
    bytes[16 + 16 * 2] = 9;
    bytes.writeUInt32LE(1000, 16 + 16 * 3 + 4);
    expectThrows(() => reader.itemAt(2), 'TypeMismatch', /slot 2 has unknown tag 9/);
    expectThrows(() => reader.itemAt(3), 'TypeMismatch', /slot 3 ends at byte \d+, past the end/);
    assert.equal(reader.itemAt(0), 'ok');
  });

  it('is not used where typed arrays cannot view the bytes, nor before the seal', () => {
    const bytes = listOf(['a', 1]);
    const memory = Buffer.alloc(bytes.length + 8);
    const unaligned = memory.subarray(4, 4 + bytes.length);
    bytes.copy(unaligned);
    assert.equal(SealedListReader.over(ListBytes.open(unaligned, 'test')), undefined);
    assert.equal(SealedListReader.over(ListBytes.format(Buffer.alloc(bytes.length), 'test', [8, 8])), undefined);
  });

  describe('through a frozen ShareableList', () => {
    let client: Client;

    beforeEach(async () => {
      const daemon = await startTestDaemon();
      client = await connect(daemon.socket);
      onCleanup(() => client.close());
    });

    async function frozen(items: ShareableItem[]): Promise<ShareableList> {
      const list = await ShareableList.create(client, items);
      await list.freeze();
      return ShareableList.open(client, list.name);
    }

    it('reads mixed kinds over several pages the same by get in order, get in any order, iteration and toArray', async () => {
      const count = 5000; // pages of 1024 items: four whole ones and a partial one
      const expected = generatedItems(count).map(expectedOf);
      const list = await frozen(generatedItems(count));
      assert.deepEqual([...list].map(describeItem), expected, 'iteration');
      const inOrder = Array.from({ length: count }, (_, i) => describeItem(list.get(i)));
      assert.deepEqual(inOrder, expected, 'get in order');
      // A fresh list object over the same blob, read in a scattered order first.
      const scattered = await ShareableList.open(client, list.name);
      for (let step = 0; step < count; step++) {
        const i = (step * 2311) % count;
        assert.equal(describeItem(scattered.get(i)), expected[i], `get(${i}) out of order`);
      }
      assert.deepEqual(scattered.toArray().map(describeItem), expected, 'toArray');
      for (let pass = 0; pass < 3; pass++) {
        assert.deepEqual([...scattered].map(describeItem), expected, `iteration, pass ${pass} (pages kept)`);
      }
      assert.equal(describeItem(list.get(count - 1)), expectedOf(generatedItem(count - 1)));
    });

    it('reads an empty frozen list as empty and refuses every index', async () => {
      const list = await frozen([]);
      assert.equal(list.length, 0);
      assert.deepEqual([...list], []);
      assert.deepEqual(list.toArray(), []);
      expectThrows(() => list.get(0), 'InvalidArgument', /get\(0\): the index is out of range; the list is empty/);
    });

    it('refuses indexes out of range or not integers, before and after reading a page', async () => {
      const list = await frozen(['a', 1, null]);
      const bad: unknown[] = [3, -1, 2 ** 32, 2 ** 32 + 1, 1.5, NaN, Infinity, '1', 1n, Symbol('i'), undefined];
      const check = () => {
        for (const index of bad) {
          expectThrows(() => list.get(index as number), 'InvalidArgument', /get\(.*\): the index is/);
        }
      };
      check();
      assert.deepEqual(list.toArray(), ['a', 1, null]);
      check();
      assert.equal(list.get(-0), 'a');
    });

    it('reads the items around a corrupt slot; only that slot throws', async () => {
      const items = Array.from({ length: 1500 }, (_, i) => `s${i}`);
      const bytes = listOf(items);
      bytes[16 + 16 * 700] = 9; // slot 700: unknown tag
      const writer = await client.createBlob(bytes.length, { typename: 'trellis::ShareableList' });
      writer.buffer.set(bytes);
      const list = await ShareableList.open(client, await writer.seal());
      for (let i = 0; i < 700; i++) assert.equal(list.get(i), `s${i}`);
      expectThrows(() => list.get(700), 'TypeMismatch', /slot 700 has unknown tag 9/);
      for (let i = 701; i < 1500; i++) assert.equal(list.get(i), `s${i}`);
      assert.throws(() => [...list], /slot 700 has unknown tag 9/);
    });
  });
});
