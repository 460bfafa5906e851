import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { CapacityReading } from '../../src/daemon/machine-capacity';
import { MemoryPolicy } from '../../src/daemon/memory-policy';
import { ObjectTable } from '../../src/daemon/object-table';
import { Residency } from '../../src/daemon/residency';
import { SegmentPool } from '../../src/daemon/segment-pool';
import { newSession } from '../../src/daemon/session';
import { IdGenerator } from '../../src/protocol/ids';

const MiB = 1024 * 1024;

describe('Residency.allocate (put-ring arenas, loads of spilled blobs) and the spare segment', () => {
  const shmDir = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const roomy: CapacityReading = { memTotal: 64 * 1024 * MiB, memAvailable: 32 * 1024 * MiB };
  let pool: SegmentPool;
  let residency: Residency;
  beforeEach(() => {
    // --size 64 MiB: standard segments of 8 MiB, and a spare of 56 MiB, reserved after the first.
    pool = new SegmentPool(new MemoryPolicy(64 * MiB, 0, { read: () => roomy }, 60_000, 56 * MiB), shmDir);
    residency = new Residency(new ObjectTable(pool, new IdGenerator(1), 1), pool, undefined, undefined);
  });
  afterEach(() => pool.close());

  it('waits for a spare being reserved, which then gives its room up, rather than answering OutOfMemory', async () => {
    pool.warmUp();
    await pool.untilWarm();
    assert.equal(pool.spareReady, 0, 'the spare is still being reserved');
    pool.allocate(8 * MiB, 'test'); // the first segment, full
    // No room is left under --size (8 + 56 MiB) but what the spare holds.
    const arena = await residency.allocate(MiB, 'put arena (1048576 bytes)');
    assert.equal(pool.segmentFd(arena.segment).size, 8 * MiB, 'a new standard segment');
    assert.equal(pool.spareReady, 0, 'the spare gave its room up');
    assert.equal(pool.reserved, 16 * MiB);
  });

  it('so does a small put sent inline (its bytes copied into a new blob)', async () => {
    pool.warmUp();
    await pool.untilWarm();
    pool.allocate(8 * MiB, 'test');
    const session = newSession(1, process.pid, 0);
    const [id] = await residency.createSealedBlobs(session, [Buffer.alloc(100, 7)]);
    assert.match(id, /^o/);
    assert.equal(pool.spareReady, 0, 'the spare gave its room up');
  });
});
