import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { native } from '../../src/native';
import { SegmentMappings } from '../../src/client/mappings';
import { ReadIndexReader } from '../../src/client/read-index';
import type { StoredObject } from '../../src/daemon/object-table';
import { ReadIndex } from '../../src/daemon/read-index';
import {
  HEADER_WORDS,
  READ_INDEX_SEGMENT,
  S_SEQ,
  SLOT_WORDS,
  firstSlot,
  indexKey,
} from '../../src/protocol/read-index-layout';
import { WRITTEN_MAP_MAGIC, writtenMapWords } from '../../src/protocol/hold-counters-layout';
import { onCleanup } from '../fixtures/setup';

/** The same memfd opened again, as a client that was sent it holds its own fd. */
const reopen = (fd: number, flags = 'r') => fs.openSync(`/proc/self/fd/${fd}`, flags);

const idOf = (n: number) => 'o0000' + n.toString(16).padStart(12, '0');
/** The slot a probe for `id` starts at in an index of 64 slots. */
const slotOfKey = (id: string) => {
  const { high, low } = indexKey(id)!;
  return firstSlot(high, low, 64);
};

describe('read index key', function () {
  it("is an object id's 64 bits as two signed words, and undefined for anything but 'o' + 16 lowercase hex digits", () => {
    for (const id of [
      'o0000000000000000',
      'o0001a2b3c4d5e6f7',
      'offffffffffffffff',
      'o80000000ffffffff',
      'o7fffffff00000001',
    ]) {
      assert.deepEqual(indexKey(id), {
        high: parseInt(id.slice(1, 9), 16) | 0,
        low: parseInt(id.slice(9, 17), 16) | 0,
      });
    }
    for (const other of [
      '',
      'o',
      'o0001a2b3c4d5e6f',
      'o0001a2b3c4d5e6f70',
      'x0001a2b3c4d5e6f7',
      'o0001A2B3C4D5E6F7',
      'o0001a2b3c4d5e6g7',
      'o0001a2b3c4d5e6/7',
      'my-name',
    ]) {
      assert.equal(indexKey(other), undefined, other);
    }
  });
});

function blobAt(id: string, segment: number, offset: number, nbytes: number): StoredObject {
  return {
    id,
    typename: 'trellis::Blob',
    nbytes,
    sealed: true,
    deleted: false,
    blob: true,
    placement: { segment, offset },
    fields: {},
    members: {},
  } as unknown as StoredObject;
}

function valueOf(id: string, data: Uint8Array): StoredObject {
  return {
    id,
    typename: 'trellis::Value',
    nbytes: data.byteLength,
    sealed: true,
    deleted: false,
    blob: false,
    fields: { data },
    members: {},
  } as unknown as StoredObject;
}

describe('read index layout: one daemon writer, lock-free readers over real shared memory', function () {
  const SEGMENT = 5;
  let index: ReadIndex;
  let reader: ReadIndexReader;
  let mappings: SegmentMappings;
  let data: Buffer;

  const open = (slots: number, arenaBytes = 64 * 1024) => {
    index = new ReadIndex(slots, arenaBytes, '');
    const segment = new native.Segment(1 << 20, 'read-index-test', '');
    onCleanup(() => {
      index.close();
      segment.close();
      mappings.close();
    });
    data = Buffer.from(new native.Mapping(segment.fd, segment.size, true).slice(0, segment.size));
    mappings = new SegmentMappings();
    mappings.add(READ_INDEX_SEGMENT, reopen(index.segment.fd), index.segment.size);
    mappings.add(SEGMENT, reopen(segment.fd), segment.size);
    const view = mappings.view({ id: 'index', segment: READ_INDEX_SEGMENT, offset: 0, size: index.segment.size });
    reader = new ReadIndexReader(view, mappings);
  };
  const putBlob = (n: number, offset: number, fill: number, size = 100) => {
    data.fill(fill, offset, offset + size);
    index.publish(blobAt(idOf(n), SEGMENT, offset, size));
  };

  it('reads blobs and values published, misses once withdrawn', () => {
    open(64);
    putBlob(1, 0, 0xaa);
    index.publish(valueOf(idOf(2), Buffer.from('msgpack bytes')));
    assert.deepEqual(reader.read(idOf(1), true), { kind: 'blob', bytes: Buffer.alloc(100, 0xaa) });
    assert.deepEqual(reader.read(idOf(2), true), { kind: 'value', bytes: Buffer.from('msgpack bytes') });
    index.withdraw(idOf(1));
    index.withdraw(idOf(2));
    assert.equal(reader.read(idOf(1), true), undefined);
    assert.equal(reader.read(idOf(2), true), undefined);
    assert.equal(index.counts.arenaUsed, 0);
    assert.equal(reader.read('some-name', true), undefined);
  });

  it('keeps colliding ids apart, and a probe goes on past a withdrawn one', () => {
    open(64);
    const colliding: number[] = [];
    const target = slotOfKey(idOf(1));
    for (let n = 1; colliding.length < 8; n++) if (slotOfKey(idOf(n)) === target) colliding.push(n);
    colliding.forEach((n, i) => putBlob(n, i * 128, i + 1));
    index.withdraw(idOf(colliding[2]));
    colliding.forEach((n, i) =>
      assert.deepEqual(
        reader.read(idOf(n), true),
        i === 2 ? undefined : { kind: 'blob', bytes: Buffer.alloc(100, i + 1) },
      ),
    );
    // The withdrawn slot is taken again.
    putBlob(colliding[2], 2 * 128, 0x33);
    assert.deepEqual(reader.read(idOf(colliding[2]), true), { kind: 'blob', bytes: Buffer.alloc(100, 0x33) });
    assert.equal(index.counts.removed, 0);
  });

  it('refuses entries past three quarters full; churn rebuilds instead of filling with withdrawn slots', () => {
    open(64);
    for (let n = 1; n <= 60; n++) putBlob(n, n * 128, n);
    assert.equal(index.counts.live, 48);
    assert.equal(index.counts.refused, 12);
    for (let n = 1; n <= 60; n++) {
      const got = reader.read(idOf(n), true);
      if (got) assert.deepEqual(got.bytes, Buffer.alloc(100, n));
    }
    for (let n = 1; n <= 60; n++) index.withdraw(idOf(n));
    // Many times the table's size of publish and withdraw: removed slots are reclaimed.
    for (let n = 100; n < 2100; n++) {
      putBlob(n, (n % 16) * 128, n & 0xff);
      if (n >= 110) index.withdraw(idOf(n - 10));
    }
    assert.equal(index.counts.live, 10);
    for (let n = 2090; n < 2100; n++) assert.deepEqual(reader.read(idOf(n), true)?.bytes, Buffer.alloc(100, n & 0xff));
  });

  it('a nearly full table does not rebuild at every publish that follows a withdraw', () => {
    open(4096);
    for (let n = 1; n <= 3070; n++) putBlob(n, n * 128, n & 0xff);
    const fd = reopen(index.segment.fd, 'r');
    const words = new Int32Array(new native.Mapping(fd, index.segment.size, false).slice(0, index.segment.size));
    fs.closeSync(fd);
    /** Slot writes so far, from the seqs (+2 a write): a rebuild rewrites every live slot. */
    const writes = () => {
      let sum = 0;
      for (let slot = 0; slot < 4096; slot++) sum += Atomics.load(words, HEADER_WORDS + slot * SLOT_WORDS + S_SEQ) / 2;
      return sum;
    };
    const before = writes();
    for (let n = 1; n <= 32; n++) {
      index.withdraw(idOf(n));
      putBlob(5000 + n, n * 128, 0x77);
    }
    // Two writes per withdraw and one per publish; a rebuild of ~3000 live slots would be thousands.
    assert.ok(writes() - before <= 32 * 3, `${writes() - before} slot writes for 32 withdraws and publishes`);
    for (let n = 33; n <= 3070; n += 97) {
      const got = reader.read(idOf(n), true);
      if (got) assert.deepEqual(got.bytes, Buffer.alloc(100, n & 0xff));
    }
  });

  it('misses while a slot is being written, and when the seq moved: a reused slot is never read as the old one', () => {
    open(64);
    putBlob(1, 0, 0x11);
    // A second writable mapping, to do what the daemon's write would look like half done.
    const fd = reopen(index.segment.fd, 'r+');
    const words = new Int32Array(new native.Mapping(fd, index.segment.size, true).slice(0, 4096));
    fs.closeSync(fd);
    const seqAt = HEADER_WORDS + slotOfKey(idOf(1)) * SLOT_WORDS + S_SEQ;
    const seq = Atomics.load(words, seqAt);
    assert.equal(seq % 2, 0);
    Atomics.store(words, seqAt, seq + 1);
    assert.equal(reader.read(idOf(1), true), undefined);
    assert.equal(reader.stats.raced, 1);
    Atomics.store(words, seqAt, seq);
    assert.deepEqual(reader.read(idOf(1), true)?.bytes, Buffer.alloc(100, 0x11));
    // Withdrawn (waiting, then removed: no client held it) and published again in the same slot:
    // three writes, the seq moved by 6.
    index.withdraw(idOf(1));
    putBlob(1, 512, 0x22);
    assert.equal(Atomics.load(words, seqAt), seq + 6);
    assert.deepEqual(reader.read(idOf(1), true)?.bytes, Buffer.alloc(100, 0x22));
  });

  it('misses for a segment this process was never sent, and for objects it does not index', () => {
    open(64);
    index.publish(blobAt(idOf(1), 99, 0, 100));
    assert.equal(reader.read(idOf(1), true), undefined);
    assert.equal(reader.stats.unmapped, 1);
    // Blobs of any size are indexed, but not past what a signed slot word holds (old clients).
    index.publish(blobAt(idOf(5), SEGMENT, 0, 4097));
    index.publish(blobAt(idOf(2), SEGMENT, 2 ** 31 - 100, 200));
    index.publish({ ...blobAt(idOf(3), SEGMENT, 0, 100), typename: 'trellis::Tensor<float64>' } as StoredObject);
    index.publish({ ...blobAt(idOf(4), SEGMENT, 0, 100), sealed: false } as StoredObject);
    assert.equal(index.counts.live, 2);
    // A frozen list's blob is indexed as a list: a copy of it is no list, so that read misses.
    index.publish({ ...blobAt(idOf(6), SEGMENT, 0, 100), typename: 'trellis::ShareableList' } as StoredObject);
    assert.equal(index.counts.live, 3);
    assert.equal(reader.read(idOf(6), true), undefined);
  });

  /** A client's hold counters for the index (as index-holds.ts grants them), mapped writable here. */
  const holdsOf = (clientId: number) => {
    const { fd, size } = index.openHolds(clientId);
    const own = reopen(fd, 'r+');
    const counters = new Int32Array(new native.Mapping(own, size, true).slice(0, size));
    fs.closeSync(own);
    return counters;
  };
  const recordPins = () => {
    const pins: string[] = [];
    index.usePins({
      pin: (object, slot) => pins.push(`pin ${object.id} ${slot}`),
      unpin: (object, slot) => pins.push(`unpin ${object.id} ${slot}`),
    });
    return pins;
  };
  const slotOf = (n: number) => slotOfKey(idOf(n));

  it("a blob is used since the last ask when a client's use count for its slot moved (once per move)", () => {
    open(64);
    const early = holdsOf(1);
    // A count left by the slot's earlier object is no use of the new one.
    early[64 + slotOf(1)] = 5;
    index.publish(blobAt(idOf(1), SEGMENT, 0, 100));
    assert.equal(index.usedSince(idOf(1)), false);
    // Use counts follow the 64 hold counters; a client that comes later starts at 0.
    const late = holdsOf(2);
    assert.equal(early.length, 128 + writtenMapWords(64), 'then the written-chunk map');
    late[64 + slotOf(1)]++;
    assert.equal(index.usedSince(idOf(1)), true);
    assert.equal(index.usedSince(idOf(1)), false);
    early[64 + slotOf(1)]++;
    late[64 + slotOf(1)]++;
    assert.equal(index.usedSince(idOf(1)), true);
    assert.equal(index.usedSince(idOf(2)), false, 'not in the index');
  });

  it('a blob withdrawn while a client holds its slot stays a tombstone, pinned, until the hold is gone', () => {
    open(64);
    const pins = recordPins();
    const counters = holdsOf(1);
    const others = holdsOf(2);
    const blob = blobAt(idOf(1), SEGMENT, 0, 100);
    index.publish(blob);
    const slot = slotOf(1);
    assert.equal(index.isHeld(idOf(1)), false);
    Atomics.add(counters, slot, 1);
    assert.equal(index.isHeld(idOf(1)), true);
    (blob as { deleted: boolean }).deleted = true;
    index.withdraw(idOf(1));
    assert.deepEqual(pins, [`pin ${idOf(1)} ${slot}`]);
    assert.equal(index.counts.waiting, 1);
    // The slot is not free: an object whose probe starts there is put after it.
    let n = 2;
    while (slotOf(n) !== slot) n++;
    putBlob(n, 256, 0x44);
    assert.deepEqual(reader.read(idOf(n), true)?.bytes, Buffer.alloc(100, 0x44));
    assert.notEqual(index.counts.live, 0);
    // Told while still held, or about slots that wait on nothing: nothing happens.
    index.holdsDropped([slot, 63, 1e9]);
    assert.equal(index.sweep(), false);
    assert.equal(index.counts.waiting, 1);
    // Junk in another client's counter for the slot counts as held too.
    Atomics.store(others, slot, -7);
    Atomics.sub(counters, slot, 1);
    index.holdsDropped([slot]);
    assert.equal(index.counts.waiting, 1);
    // That client goes away: its counters no longer count, and the free waiting on them is done.
    index.dropClient(2);
    assert.deepEqual(pins, [`pin ${idOf(1)} ${slot}`, `unpin ${idOf(1)} ${slot}`]);
    assert.equal(index.counts.waiting, 0);
    // A deleted object is not published again.
    assert.equal(reader.read(idOf(1), true), undefined);
  });

  it('a held blob withdrawn for a spill comes back into the index once let go', () => {
    open(64);
    const pins = recordPins();
    const counters = holdsOf(1);
    putBlob(1, 0, 0x55);
    Atomics.add(counters, slotOf(1), 1);
    index.withdraw(idOf(1));
    assert.equal(reader.read(idOf(1), true), undefined);
    Atomics.sub(counters, slotOf(1), 1);
    assert.equal(index.sweep(), true);
    assert.equal(pins.length, 2);
    assert.deepEqual(reader.read(idOf(1), true)?.bytes, Buffer.alloc(100, 0x55));
  });

  it('a rebuild leaves a held live slot as a tombstone and puts its entry back elsewhere', () => {
    open(64);
    const pins = recordPins();
    const counters = holdsOf(1);
    for (let n = 1; n <= 30; n++) putBlob(n, n * 128, n);
    Atomics.add(counters, slotOf(1), 1);
    // Churn until removed slots fill the table past three quarters: a rebuild.
    for (let n = 100; pins.length === 0 && n < 5000; n++) {
      putBlob(n, 0, 0xee);
      index.withdraw(idOf(n));
    }
    assert.deepEqual(pins, [`pin ${idOf(1)} ${slotOf(1)}`]);
    assert.equal(index.counts.waiting, 1);
    for (let n = 1; n <= 30; n++) assert.deepEqual(reader.read(idOf(n), true)?.bytes, Buffer.alloc(100, n));
    Atomics.sub(counters, slotOf(1), 1);
    index.holdsDropped([slotOf(1)]);
    assert.equal(index.counts.waiting, 0);
    // Still live at its new slot: let go is all, it is not published twice.
    assert.equal(index.counts.live, 30);
    assert.deepEqual(pins, [`pin ${idOf(1)} ${slotOf(1)}`, `unpin ${idOf(1)} ${slotOf(1)}`]);
  });

  /** Churns puts and withdraws until a rebuild pins a held slot (`pins` records it). */
  const churnUntilRebuild = (pins: string[]) => {
    for (let n = 100; pins.length === 0 && n < 5000; n++) {
      putBlob(n, 0, 0xee);
      index.withdraw(idOf(n));
    }
    assert.equal(pins.length, 1, 'a rebuild made the held slot a tombstone');
  };
  /** A client lets go of its hold on `slot` as index-holds.ts does: a use, the hold, then a word. */
  const releaseAt = (counters: Int32Array, slot: number, counted = true) => {
    if (counted) counters[64 + slot]++;
    Atomics.sub(counters, slot, 1);
    index.holdsDropped([slot]);
  };

  it('a release through a slot a rebuild made a tombstone is a use of its blob (at its new slot)', () => {
    open(64);
    const pins = recordPins();
    const counters = holdsOf(1);
    for (let n = 1; n <= 30; n++) putBlob(n, n * 128, n);
    Atomics.add(counters, slotOf(1), 1);
    churnUntilRebuild(pins);
    assert.equal(index.usedSince(idOf(1)), false, 'held, not yet used');
    releaseAt(counters, slotOf(1));
    assert.equal(index.counts.waiting, 0);
    assert.equal(index.usedSince(idOf(1)), true, 'the release counted');
    assert.equal(index.usedSince(idOf(1)), false, 'once');
  });

  it('a hold kept until disconnect on a tombstone others still hold is a use once the blob is back', () => {
    open(64);
    const pins = recordPins();
    const keeper = holdsOf(1);
    const other = holdsOf(2);
    putBlob(1, 0, 0x55);
    const slot = slotOf(1);
    Atomics.add(keeper, slot, 1);
    Atomics.add(other, slot, 1);
    // A spill that found it held as it withdrew it: a tombstone, out of the index, not deleted.
    index.withdraw(idOf(1));
    index.dropClient(1);
    assert.equal(index.counts.waiting, 1, 'the other client still holds it');
    // The other lets go without a use of its own (as a client of an older layout would).
    releaseAt(other, slot, false);
    assert.equal(index.counts.waiting, 0);
    assert.deepEqual(reader.read(idOf(1), true)?.bytes, Buffer.alloc(100, 0x55), 'back in the index');
    assert.equal(index.usedSince(idOf(1)), true, 'the kept hold counted');
    assert.equal(index.usedSince(idOf(1)), false, 'once');
    assert.equal(pins.length, 2);
  });

  it('a release through a tombstone of a blob out of the index is a use once the blob is back', () => {
    open(64);
    const counters = holdsOf(1);
    putBlob(1, 0, 0x55);
    Atomics.add(counters, slotOf(1), 1);
    index.withdraw(idOf(1));
    releaseAt(counters, slotOf(1));
    assert.deepEqual(reader.read(idOf(1), true)?.bytes, Buffer.alloc(100, 0x55), 'back in the index');
    assert.equal(index.usedSince(idOf(1)), true);
  });

  it('a client that goes away takes no use with it and adds none: the counts seen stay exact', () => {
    open(64);
    const leaving = holdsOf(1);
    const staying = holdsOf(2);
    putBlob(1, 0, 0x55);
    leaving[64 + slotOf(1)] += 3;
    assert.equal(index.usedSince(idOf(1)), true);
    // Its counts were seen: its going is no use.
    index.dropClient(1);
    assert.equal(index.usedSince(idOf(1)), false, 'no use that was none');
    staying[64 + slotOf(1)]++;
    assert.equal(index.usedSince(idOf(1)), true);
    // Counts not yet seen when it goes are still uses.
    const late = holdsOf(3);
    late[64 + slotOf(1)]++;
    index.dropClient(3);
    assert.equal(index.usedSince(idOf(1)), true, 'a use by a client that went before the ask');
  });

  /** Ids whose probe starts in the first and in the second 4096 slots of a table of 8192. */
  const idsInChunks = () => {
    const inChunk = (chunk: number) => {
      let n = 1;
      while (Math.floor(firstSlot(indexKey(idOf(n))!.high, indexKey(idOf(n))!.low, 8192) / 4096) !== chunk) n++;
      return n;
    };
    return [inChunk(0), inChunk(1)];
  };

  it('a departing client that keeps the written-chunk map is read where it wrote, and only there', () => {
    open(8192);
    const counters = holdsOf(1);
    const [first, second] = idsInChunks();
    putBlob(first, 0, 1);
    putBlob(second, 128, 2);
    const client = new ReadIndexReader(
      mappings.view({ id: 'index', segment: READ_INDEX_SEGMENT, offset: 0, size: index.segment.size }),
      mappings,
      () => true,
      { words: counters, tell: () => {} },
    );
    assert.equal(counters[2 * 8192], WRITTEN_MAP_MAGIC, 'the map is kept from the start');
    // A view kept until the client goes, through the client's own code (which marks its chunk).
    assert.equal(client.read(idOf(first), false)?.bytes.equals(Buffer.alloc(100, 1)), true);
    // A hold written behind the map's back, in a chunk it does not name: not read.
    Atomics.add(counters, firstSlot(indexKey(idOf(second))!.high, indexKey(idOf(second))!.low, 8192), 1);
    index.dropClient(1);
    assert.equal(index.usedSince(idOf(first)), true, 'the kept view counted');
    assert.equal(index.usedSince(idOf(second)), false, 'the chunk the map does not name was not read');
  });

  it('a departing client without the map (an older one) is read whole', () => {
    open(8192);
    const counters = holdsOf(1);
    const [first, second] = idsInChunks();
    putBlob(first, 0, 1);
    putBlob(second, 128, 2);
    for (const n of [first, second])
      Atomics.add(counters, firstSlot(indexKey(idOf(n))!.high, indexKey(idOf(n))!.low, 8192), 1);
    counters[8192 + 5] = 7;
    index.dropClient(1);
    assert.equal(index.usedSince(idOf(first)), true);
    assert.equal(index.usedSince(idOf(second)), true);
  });

  it("indexes a DataFrame's or Tensor's record only when every member is an indexed blob, frees it when withdrawn", () => {
    open(64);
    putBlob(1, 0, 1);
    putBlob(2, 128, 2);
    const frame = (id: string, typename: string, members: Record<string, string>) =>
      ({
        ...valueOf(id, new Uint8Array(0)),
        typename,
        nbytes: 200,
        fields: { layout: { x: 1 } },
        members,
      }) as StoredObject;
    index.publish(frame(idOf(10), 'trellis::DataFrame', { b0: idOf(1), b1: idOf(2) }));
    index.publish(frame(idOf(11), 'trellis::RecordBatch', { b0: idOf(1) }));
    index.publish(frame(idOf(13), 'trellis::Tensor<float64>', { data: idOf(1) }));
    // A member not in the index (never published), and a type the index does not pack.
    index.publish(frame(idOf(12), 'trellis::DataFrame', { b0: idOf(1), b1: idOf(3) }));
    index.publish(frame(idOf(14), 'my::Tensor<float64>', { data: idOf(1) }));
    assert.equal(index.counts.live, 5);
    assert.ok(index.counts.arenaUsed > 0);
    // A reader that resolves no objects (as one without hold counters, or predating objects) misses.
    assert.equal(reader.read(idOf(10), false), undefined);
    assert.equal(reader.stats.misses, 1);
    index.withdraw(idOf(10));
    index.withdraw(idOf(11));
    index.withdraw(idOf(13));
    assert.equal(index.counts.arenaUsed, 0);
    assert.equal(index.counts.live, 2);
  });

  it('a full value arena refuses values, and takes them again once others are withdrawn', () => {
    open(64, 1024);
    for (let n = 1; n <= 20; n++) index.publish(valueOf(idOf(n), Buffer.alloc(100, n)));
    assert.ok(index.counts.refused > 0);
    const live = index.counts.live;
    for (let n = 1; n <= 20; n++) index.withdraw(idOf(n));
    index.publish(valueOf(idOf(50), Buffer.alloc(100, 50)));
    assert.deepEqual(reader.read(idOf(50), true), { kind: 'value', bytes: Buffer.alloc(100, 50) });
    assert.ok(live < 20);
  });
});
