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
    assert.equal(pool.reserveAhead([MiB, 10 * MiB]), pool.reserveAhead([MiB]), 'one reservation at a time');
    await pool.reserveAhead([MiB, 10 * MiB]);
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
    assert.equal(pool.reserveAhead([MiB]), warming, 'createBlobs waits for the same reservation');
    await warming;
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
