/**
 * The ShareableList layout readers over bytes another process wrote: arbitrary bytes, and real
 * lists with bytes overwritten, open and read as items or as a TypeMismatch, never a RangeError
 * or a read outside the blob. Both readers: the general one (ListBytes.itemAt, in
 * types/shareable-list-layout.ts) and the fast one frozen lists use (SealedListReader), which must
 * read every slot as the general one does.
 */
import * as assert from 'node:assert/strict';
import * as fc from 'fast-check';
import {
  encodeItem,
  initialCapacity,
  LAYOUT_VERSION,
  LIST_MAGIC,
  listBytes,
  ListBytes,
  type EncodedItem,
} from '../../src/types/shareable-list-layout';
import { SealedListReader } from '../../src/types/shareable-list-reader';
import { check, onlyTyped, runs } from './properties';

const MAX_ITEMS_READ = 300;

const item = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
);

/** A real list's bytes, as ShareableList.create lays them out, in a buffer of exactly its size. */
function listOf(items: unknown[]): Buffer {
  const encoded = items.map((value) => encodeItem(value) as EncodedItem);
  const capacities = encoded.map((e) => initialCapacity(e, 0));
  const bytes = Buffer.alloc(listBytes(capacities));
  const list = ListBytes.format(bytes, 'fuzz', capacities);
  encoded.forEach((e, i) => list.writeAt(i, e));
  return bytes;
}

/**
 * Opens and reads every item (up to a bound) with both readers, which must agree, item or error;
 * the blob is padded with a guard that must stay unread.
 */
function readAll(bytes: Buffer): void {
  const list = ListBytes.open(bytes, 'fuzz');
  const fast = SealedListReader.over(list);
  assert.ok(fast, 'guarded() places the list 8-aligned');
  for (let i = 0; i < Math.min(list.count, MAX_ITEMS_READ); i++) {
    const value = outcome(() => fast.itemAt(i));
    assert.deepEqual(
      value,
      outcome(() => list.itemAt(i)),
      `slot ${i}: SealedListReader against ListBytes.itemAt`,
    );
    if (Buffer.isBuffer(value)) {
      // A bytes item must lie inside the list's own bytes, not in the memory around them.
      assert.ok(
        value.byteOffset >= bytes.byteOffset && value.byteOffset + value.length <= bytes.byteOffset + bytes.length,
      );
    }
  }
  // The errors, now that both readers agree on them.
  for (let i = 0; i < Math.min(list.count, MAX_ITEMS_READ); i++) fast.itemAt(i);
}

/** A read's item, or the error it threw (as its message), so that two readers can be compared. */
function outcome(read: () => unknown): unknown {
  try {
    return read();
  } catch (error) {
    return { threw: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

/** The bytes inside a larger buffer whose other bytes are a guard pattern: reads past the end would see it. */
function guarded(bytes: Uint8Array): Buffer {
  const memory = Buffer.alloc(bytes.length + 128, 0xa5);
  const view = memory.subarray(64, 64 + bytes.length);
  view.set(bytes);
  return view;
}

describe('fuzz: ShareableList layout reader', () => {
  it('arbitrary bytes behind a valid header open and read as items or a TypeMismatch', () => {
    check(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.nat(), (body, count) => {
        const bytes = Buffer.alloc(16 + body.length);
        bytes.writeUInt32LE(LIST_MAGIC, 0);
        bytes.writeUInt16LE(LAYOUT_VERSION, 4);
        bytes.writeUInt32LE(count % 64, 8);
        bytes.set(body, 16);
        onlyTyped(() => readAll(guarded(bytes)), ['TypeMismatch']);
      }),
      runs(3000),
    );
  });

  it('arbitrary bytes (no header) are a TypeMismatch or, rarely, a list', () => {
    check(
      fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) =>
        onlyTyped(() => readAll(guarded(bytes)), ['TypeMismatch']),
      ),
      runs(1000),
    );
  });

  it('real lists with bytes overwritten read as items or a TypeMismatch', () => {
    check(
      fc.property(
        fc.array(item, { maxLength: 20 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        (items, edits) => {
          const bytes = listOf(items);
          for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
          onlyTyped(() => readAll(guarded(bytes)), ['TypeMismatch']);
        },
      ),
      runs(2000),
    );
  });

  it('real lists read back as written', () => {
    check(
      fc.property(fc.array(item, { maxLength: 30 }), (items) => {
        const list = ListBytes.open(guarded(listOf(items)), 'fuzz');
        const fast = SealedListReader.over(list)!;
        const read = items.map((_, i) => list.itemAt(i));
        assert.deepEqual(
          items.map((_, i) => fast.itemAt(i)),
          read,
        );
        const expected = items.map((v) =>
          typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
            ? Number(v)
            : v,
        );
        assert.deepEqual(
          read.map((v) => (Buffer.isBuffer(v) ? Buffer.from(v) : v)),
          expected,
        );
      }),
      runs(1000),
    );
  });
});
