import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { CapacityReading } from '../../src/daemon/machine-capacity';
import { MemoryPolicy } from '../../src/daemon/memory-policy';
import { SegmentPool } from '../../src/daemon/segment-pool';

const MiB = 1024 * 1024;

describe('SegmentPool.reserveAhead: new segments reserved off the event loop', () => {
  const shmDir = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  let pool: SegmentPool;
  beforeEach(() => {
    // Standard segments of 4 MiB (an eighth of 32 MiB); larger blobs get a segment of their own.
    pool = new SegmentPool(new MemoryPolicy(32 * MiB), shmDir);
  });
  afterEach(() => pool.close());

  it('reserves a segment for a blob that fits nowhere, which allocate then uses without another', async () => {
    const first = pool.reserveAhead([MiB, 10 * MiB]);
    assert.ok(first && pool.reserveAhead([MiB]), 'a second request waits for the first');
    await first;
    assert.equal(pool.reserveAhead([MiB]), undefined, 'which reserved room for both');
    const reserved = pool.reserved;
    assert.ok(reserved >= 10 * MiB, `reserved ${reserved} bytes`);
    const count = pool.count;
    assert.equal(pool.reserveAhead([MiB, 10 * MiB]), undefined, 'nothing to wait for once both fit');
    const large = pool.allocate(10 * MiB, 'test');
    const small = pool.allocate(MiB, 'test');
    assert.equal(pool.count, count, 'allocate reserved nothing more');
    assert.notEqual(large.segment, small.segment);
    assert.equal(pool.reserved, reserved);
  });

  it('reserves room for every size of one request, not the same room twice (a DataFrame of two columns)', async () => {
    // Each 10 MiB blob needs a segment of its own; before, the first one reserved made both look placed,
    // and allocate reserved the second's segment on the event loop (without huge pages).
    await pool.reserveAhead([10 * MiB, 10 * MiB]);
    assert.equal(pool.count, 2);
    assert.equal(pool.reserveAhead([10 * MiB, 10 * MiB]), undefined, 'nothing to wait for once both fit');
    const first = pool.allocate(10 * MiB, 'test');
    const second = pool.allocate(10 * MiB, 'test');
    assert.equal(pool.count, 2, 'allocate reserved nothing more');
    assert.notEqual(first.segment, second.segment);
    const third = pool.reserveAhead([10 * MiB]);
    assert.ok(third, 'a third needs a segment again');
    await third;
  });

  it('leaves a blob past the limit to allocate, which answers OutOfMemory as before', async () => {
    await pool.reserveAhead([40 * MiB]);
    assert.equal(pool.count, 0);
    assert.equal(pool.reserved, 0);
    assert.throws(() => pool.allocate(40 * MiB, 'createBlob(41943040)'), {
      code: 'OutOfMemory',
      message: /^createBlob\(41943040\): 41943040 bytes \(40 MiB\) do not fit/,
    });
  });

  it('keeps within the limit while a reservation runs: the pending segment counts as reserved', async () => {
    const first = pool.reserveAhead([20 * MiB]);
    assert.ok(first);
    await first;
    // 20 MiB reserved of 32: a second 20 MiB segment would pass the limit (no empty one to give back
    // once the first holds a blob).
    pool.allocate(20 * MiB, 'test');
    await pool.reserveAhead([20 * MiB]);
    assert.equal(pool.count, 1);
    assert.throws(() => pool.allocate(20 * MiB, 'test'), { code: 'OutOfMemory' });
  });

  it('gives a segment back when the pool closes before its reservation ends', async () => {
    const reserving = pool.reserveAhead([16 * MiB]);
    pool.close();
    await reserving;
    assert.equal(pool.count, 0);
  });
});

describe('SegmentPool.warmUp: the first segment reserved off the event loop', () => {
  /** A machine with no RAM to spare. */
  const noRoom: CapacityReading = { memTotal: 1024 * MiB, memAvailable: 0 };
  const shmDir = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  let pool: SegmentPool;
  beforeEach(() => {
    pool = new SegmentPool(new MemoryPolicy(32 * MiB), shmDir);
  });
  afterEach(() => pool.close());

  it('reserves one standard segment in the background, which allocations wait for instead of reserving another', async () => {
    pool.warmUp();
    assert.equal(pool.count, 0, 'not on the event loop');
    const warming = pool.untilWarm();
    assert.ok(warming, 'a request that allocates now has something to wait for');
    const request = pool.reserveAhead([MiB]);
    assert.ok(request, 'createBlobs waits for it too');
    await request;
    assert.equal(pool.count, 1);
    assert.equal(pool.reserved, 4 * MiB);
    assert.equal(pool.untilWarm(), undefined, 'nothing to wait for once a segment exists');
    pool.allocate(MiB, 'test');
    assert.equal(pool.count, 1);
  });

  it('lets the daemon start where even one segment does not fit: allocations answer OutOfMemory', async () => {
    const tiny = new SegmentPool(new MemoryPolicy(32 * MiB, undefined, { read: () => noRoom }), shmDir);
    try {
      tiny.warmUp();
      await tiny.untilWarm();
      assert.equal(tiny.count, 0);
      assert.equal(tiny.untilWarm(), undefined, 'a failed warm-up leaves nothing to wait for');
      assert.throws(() => tiny.allocate(MiB, 'test'), { code: 'OutOfMemory' });
    } finally {
      tiny.close();
    }
  });
});

describe('SegmentPool: empty segments retained past the idle time', () => {
  const shmDir = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const roomy: CapacityReading = { memTotal: 64 * 1024 * MiB, memAvailable: 32 * 1024 * MiB };
  /** The pool's idle check runs every second at most often; this waits for one to pass. */
  const afterIdleCheck = () => new Promise((resolve) => setTimeout(resolve, 1300));

  /** Idle at once, retained for a minute; `reading` is what the machine holds. */
  function emptiedPool(reading: { current: CapacityReading }): SegmentPool {
    const pool = new SegmentPool(new MemoryPolicy(32 * MiB, 0, { read: () => reading.current }, 60_000), shmDir);
    pool.free(pool.allocate(MiB, 'test'));
    return pool;
  }

  it('keeps an emptied segment while the machine has room, and gives it back when it has none', async () => {
    const reading = { current: roomy };
    const pool = emptiedPool(reading);
    try {
      await afterIdleCheck();
      assert.equal(pool.count, 1, 'retained');
      assert.equal(pool.reserved, 4 * MiB);
      reading.current = { memTotal: 64 * 1024 * MiB, memAvailable: 0 };
      await afterIdleCheck();
      assert.equal(pool.count, 0, 'given back under pressure');
      assert.equal(pool.reserved, 0);
    } finally {
      pool.close();
    }
  });
});

describe('SegmentPool: the spare segment (--spare-segment)', () => {
  const shmDir = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const roomy: CapacityReading = { memTotal: 64 * 1024 * MiB, memAvailable: 32 * 1024 * MiB };
  const pools: SegmentPool[] = [];
  afterEach(() => pools.splice(0).forEach((pool) => pool.close()));

  /** --size 64 MiB (standard segments of 8 MiB) with a spare of `spare` bytes, checked every second. */
  function sparePool(spare: number, reading = { current: roomy }): SegmentPool {
    const pool = new SegmentPool(new MemoryPolicy(64 * MiB, 0, { read: () => reading.current }, 60_000, spare), shmDir);
    pools.push(pool);
    return pool;
  }

  /** Waits (bounded) until the pool has a spare ready, or none when `ready` is false. */
  async function untilSpare(pool: SegmentPool, ready = true): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (pool.spareReady > 0 !== ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.spareReady > 0, ready, ready ? 'a spare is ready' : 'no spare');
  }

  it('is reserved after the first segment and taken by the first blob that needs a segment its size', async () => {
    const pool = sparePool(16 * MiB);
    pool.warmUp();
    await pool.untilWarm();
    await untilSpare(pool);
    assert.equal(pool.spareReady, 16 * MiB);
    assert.equal(pool.reserved, 8 * MiB + 16 * MiB, 'the spare counts as reserved');
    assert.equal(pool.count, 1, 'but is no segment of the pool until taken');

    await pool.reserveAhead([12 * MiB]);
    const large = pool.allocate(12 * MiB, 'test');
    assert.equal(pool.count, 2);
    assert.equal(pool.segmentFd(large.segment).size, 16 * MiB, 'the blob got the spare');
    await untilSpare(pool);
    assert.equal(pool.reserved, 8 * MiB + 16 * MiB + 16 * MiB, 'a new spare replaces it');

    // A blob that fits a standard segment leaves a larger spare alone.
    pool.allocate(7 * MiB, 'test');
    const small = pool.allocate(5 * MiB, 'test'); // room in neither segment
    assert.equal(pool.segmentFd(small.segment).size, 8 * MiB, 'a new standard segment, not the spare');
    assert.equal(pool.spareReady, 16 * MiB);
  });

  it('is waited for by a blob it fits while it is being reserved, rather than reserving another', async () => {
    const pool = sparePool(16 * MiB);
    pool.warmUp();
    await pool.untilWarm();
    assert.equal(pool.spareReady, 0, 'still being reserved');
    await pool.reserveAhead([12 * MiB]);
    const placement = pool.allocate(12 * MiB, 'test');
    assert.equal(pool.segmentFd(placement.segment).size, 16 * MiB, 'the blob got the spare');
    assert.equal(pool.count, 2);
    assert.equal(pool.reserved, 8 * MiB + 16 * MiB, 'its segment; the next spare comes after a pause');
    await untilSpare(pool);
    assert.equal(pool.reserved, 8 * MiB + 16 * MiB + 16 * MiB);
  });

  it('is taken on the spot by an allocation that did not reserve ahead', async () => {
    const pool = sparePool(16 * MiB);
    pool.warmUp();
    await untilSpare(pool);
    const placement = pool.allocate(10 * MiB, 'test');
    assert.equal(pool.segmentFd(placement.segment).size, 16 * MiB);
  });

  it('gives its room to a blob that needs it under --size, and stays away while that room is taken', async () => {
    const pool = sparePool(32 * MiB);
    pool.warmUp();
    await untilSpare(pool);
    assert.equal(pool.reserved, 40 * MiB);
    // 40 MiB needs a segment of its own larger than the spare, and fits under 64 MiB only without it.
    await pool.reserveAhead([40 * MiB]);
    pool.allocate(40 * MiB, 'test');
    assert.equal(pool.spareReady, 0);
    assert.equal(pool.reserved, 48 * MiB);
    await new Promise((resolve) => setTimeout(resolve, 1300)); // an idle check
    assert.equal(pool.reserved, 48 * MiB, 'no spare past --size');
  });

  it('is replaced only after the pause, even when an idle check comes first', async () => {
    // The idle check runs every second from the pool's creation (idleReleaseMs 0); the spare is
    // taken shortly before one, which must not start the next spare while the blob is written.
    const created = Date.now();
    const pool = sparePool(16 * MiB);
    pool.warmUp();
    await untilSpare(pool);
    const tick = created + Math.ceil((Date.now() - created + 300) / 1000) * 1000;
    await new Promise((resolve) => setTimeout(resolve, tick - 150 - Date.now()));
    pool.allocate(12 * MiB, 'test');
    assert.equal(pool.reserved, 8 * MiB + 16 * MiB);
    await new Promise((resolve) => setTimeout(resolve, 500)); // past the idle check, not the pause
    assert.equal(pool.reserved, 8 * MiB + 16 * MiB, 'no new spare yet');
    await untilSpare(pool);
  });

  it('is left alone by a blob larger than a spare smaller than a standard segment', async () => {
    // Standard segments of 8 MiB, a spare of 4 MiB: a 6 MiB blob fits a standard segment, not the spare.
    const pool = sparePool(4 * MiB);
    pool.warmUp();
    await untilSpare(pool);
    pool.allocate(5 * MiB, 'test');
    const placement = pool.allocate(6 * MiB, 'test'); // no room left in the first segment
    assert.equal(pool.segmentFd(placement.segment).size, 8 * MiB, 'a new standard segment');
    assert.equal(pool.spareReady, 4 * MiB, 'the spare stays for a blob it can hold');
    await pool.reserveAhead([6 * MiB]);
    assert.equal(pool.spareReady, 4 * MiB, 'reserving ahead leaves it too');
  });

  it('gives its room to a blob that needs it while it is still being reserved', async () => {
    const pool = sparePool(32 * MiB);
    pool.warmUp();
    await pool.untilWarm();
    assert.equal(pool.spareReady, 0, 'still being reserved');
    // 8 MiB + a 32 MiB spare on its way: a 40 MiB blob fits under 64 MiB only without the spare.
    await pool.reserveAhead([40 * MiB]);
    const placement = pool.allocate(40 * MiB, 'test');
    assert.equal(pool.segmentFd(placement.segment).size, 40 * MiB);
    assert.equal(pool.spareReady, 0);
    assert.equal(pool.reserved, 48 * MiB);
  });

  it('gives its room to a request that arrived during the warm-up, once that is done', async () => {
    // 32 MiB standard segment + a 128 MiB spare of 256 MiB: a 200 MiB blob fits only without the spare,
    // which starts as the warm-up ends, while the request that waited for the warm-up goes on.
    const roomy: CapacityReading = { memTotal: 64 * 1024 * MiB, memAvailable: 32 * 1024 * MiB };
    const pool = new SegmentPool(new MemoryPolicy(256 * MiB, 0, { read: () => roomy }, 60_000, 128 * MiB), shmDir);
    pools.push(pool);
    pool.warmUp();
    await pool.reserveAhead([200 * MiB]);
    const placement = pool.allocate(200 * MiB, 'test');
    assert.equal(pool.segmentFd(placement.segment).size, 200 * MiB);
    assert.equal(pool.spareReady, 0);
  });

  it('is given back when the machine runs short, and reserved again once it has room', async () => {
    const reading = { current: roomy };
    const pool = sparePool(16 * MiB, reading);
    pool.warmUp();
    await untilSpare(pool);
    reading.current = { memTotal: 64 * 1024 * MiB, memAvailable: 0 };
    await untilSpare(pool, false);
    assert.ok(pool.reserved <= 8 * MiB, `reserved ${pool.reserved}`);
    reading.current = roomy;
    await untilSpare(pool);
  });
});

describe('MemoryPolicy.spareBytes', () => {
  it('is rounded to 2 MiB and refused past --size', () => {
    assert.equal(new MemoryPolicy(64 * MiB, 0, undefined, undefined, 3 * MiB).spareBytes, 4 * MiB);
    assert.throws(() => new MemoryPolicy(64 * MiB, 0, undefined, undefined, 65 * MiB), {
      code: 'InvalidArgument',
      message: /^--spare-segment 65 MiB is larger than --size 64 MiB/,
    });
  });

  it('lets only blobs that need a segment of their own take a spare larger than a standard segment', () => {
    const policy = new MemoryPolicy(64 * MiB, 0, undefined, undefined, 16 * MiB);
    assert.equal(policy.spareTakes(MiB), false);
    assert.equal(policy.spareTakes(12 * MiB), true);
    assert.equal(policy.spareTakes(17 * MiB), false);
    const small = new MemoryPolicy(64 * MiB, 0, undefined, undefined, 8 * MiB);
    assert.equal(small.spareTakes(MiB), true, 'a spare of a standard segment serves as one');
    const smaller = new MemoryPolicy(64 * MiB, 0, undefined, undefined, 4 * MiB);
    assert.equal(smaller.spareTakes(4 * MiB), true);
    assert.equal(smaller.spareTakes(6 * MiB), false, 'nor one larger than the spare');
    assert.equal(new MemoryPolicy(64 * MiB).spareTakes(MiB), false, 'none by default');
  });
});
