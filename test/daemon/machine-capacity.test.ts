import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { MachineCapacity, memoryHierarchies, type CapacityReading } from '../../src/daemon/machine-capacity';
import { machineRoomOf, MemoryPolicy, MIN_RAM_MARGIN } from '../../src/daemon/memory-policy';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A machine frozen at one reading, for the policy's arithmetic. */
function frozenMachine(reading: CapacityReading): { read(): CapacityReading } {
  return { read: () => reading };
}

const roomyMachine: CapacityReading = {
  memTotal: 24 * GiB,
  memAvailable: 22 * GiB,
  shm: { dir: '/dev/shm', free: 23 * GiB, size: 24 * GiB },
};

describe('what the machine can hold', () => {
  it('reads MemAvailable, the shm dir and the cgroup of this machine', () => {
    const reading = new MachineCapacity('/dev/shm').read();
    assert.ok(reading.memAvailable > 0 && reading.memAvailable <= reading.memTotal, JSON.stringify(reading));
    assert.ok(reading.shm && reading.shm.free <= reading.shm.size, 'the free space of /dev/shm');
    assert.equal(new MachineCapacity('').read().shm, undefined, 'memfds have no tmpfs bound');
    if (reading.cgroup) assert.ok(reading.cgroup.limit > 0 && fs.existsSync(reading.cgroup.dir));
  });

  it('finds cgroup mounts with the memory controller in mountinfo', () => {
    const mountinfo = [
      '24 23 0:22 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=65536k',
      '31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
      '34 30 0:31 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
      '40 30 0:37 / /sys/fs/cgroup/with\\040space rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n');
    assert.deepEqual(memoryHierarchies(mountinfo), [
      { version: 1, mountPoint: '/sys/fs/cgroup/memory', mountRoot: '/docker/abc' },
      { version: 2, mountPoint: '/sys/fs/cgroup/with space', mountRoot: '/' },
    ]);
  });

  it('the room is the least of RAM less a margin, the tmpfs and the cgroup, and names it', () => {
    const ram = machineRoomOf(roomyMachine);
    assert.equal(ram.bound, 'ram');
    assert.equal(ram.bytes, 22 * GiB - Math.floor(0.05 * 24 * GiB));
    assert.match(ram.why, /^MemAvailable 22 GiB less a 1.20 GiB safety margin$/);

    const small = machineRoomOf({ memTotal: 2 * GiB, memAvailable: 1 * GiB });
    assert.equal(small.bytes, GiB - MIN_RAM_MARGIN, 'at least 256 MiB of RAM is left free');

    const shm = machineRoomOf({ ...roomyMachine, shm: { dir: '/dev/shm', free: 60 * MiB, size: 64 * MiB } });
    assert.deepEqual(shm, { bytes: 60 * MiB, bound: 'shm', why: '/dev/shm has 60 MiB free of 64 MiB' });

    const cgroup = machineRoomOf({
      ...roomyMachine,
      cgroup: { dir: '/sys/fs/cgroup/box', limit: GiB, usage: 300 * MiB },
    });
    assert.equal(cgroup.bound, 'cgroup');
    assert.equal(cgroup.bytes, GiB - 300 * MiB - 64 * MiB);
    assert.match(
      cgroup.why,
      /memory cgroup \/sys\/fs\/cgroup\/box has 300 MiB of its 1 GiB limit in use, less a 64 MiB/,
    );

    const full = machineRoomOf({ memTotal: 4 * GiB, memAvailable: 100 * MiB });
    assert.equal(full.bytes, 0, 'never negative');
  });

  it('warns at start when --size is more than the machine holds, and only then', () => {
    const big = new MemoryPolicy(64 * GiB, undefined, frozenMachine(roomyMachine));
    assert.equal(
      big.startWarning(),
      '--size 64 GiB exceeds what this machine can hold now (MemAvailable 22 GiB, /dev/shm free 23 GiB of 24 GiB, ' +
        'cgroup limit none): OutOfMemory will be answered past about 20.8 GiB ' +
        '(MemAvailable 22 GiB less a 1.20 GiB safety margin)',
    );
    assert.equal(new MemoryPolicy(2 * GiB, undefined, frozenMachine(roomyMachine)).startWarning(), undefined);
    assert.equal(new MemoryPolicy(64 * GiB).startWarning(), undefined, 'no probe, nothing to say');

    const container = { ...roomyMachine, shm: { dir: '/dev/shm', free: 64 * MiB, size: 64 * MiB } };
    assert.match(
      new MemoryPolicy(2 * GiB, undefined, frozenMachine(container)).startWarning()!,
      /past about 64 MiB \(\/dev\/shm has 64 MiB free of 64 MiB\); to hold more, enlarge \/dev\/shm \(docker run --shm-size/,
    );
  });

  it('sizes standard segments from what the machine holds, and caps segments by its room', () => {
    const container = { ...roomyMachine, shm: { dir: '/dev/shm', free: 64 * MiB, size: 64 * MiB } };
    const policy = new MemoryPolicy(2 * GiB, undefined, frozenMachine(container));
    assert.equal(policy.standardSegmentSize, 8 * MiB, 'an eighth of 64 MiB, not of 2 GiB');
    assert.equal(policy.limit, 2 * GiB, '--size stays the ceiling');
    assert.equal(policy.capacity(0), 64 * MiB);
    assert.equal(
      policy.segmentSizeFor(1000, 0, 5 * MiB),
      64 * 1024,
      'a tight segment where a standard one does not fit',
    );
    assert.equal(policy.segmentSizeFor(6 * MiB, 0, 5 * MiB), 0);
    const segments = [{ id: 1, size: 8 * MiB, used: 0, idleSince: 0 }];
    assert.deepEqual(
      policy.releaseToFit(segments, 8 * MiB, 10 * MiB, 5 * MiB),
      [1],
      'released pages return to the tmpfs',
    );
  });
});
