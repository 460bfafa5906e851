import * as assert from 'node:assert/strict';
import { MemoryPolicy, MAX_SEGMENT_BYTES } from '../../src/daemon/memory-policy';
import { parseSize } from '../../src/daemon/sizes';

const MiB = 1024 * 1024;

describe('sizes and the memory policy', () => {
  it('reads sizes as people write them', () => {
    assert.equal(parseSize('512MiB'), 512 * MiB);
    assert.equal(parseSize('2GiB'), 2048 * MiB);
    assert.equal(parseSize('1G'), 1024 * MiB);
    assert.equal(parseSize('1048576'), MiB);
    assert.equal(parseSize('1.5k'), 1536);
    assert.throws(() => parseSize('lots'), { code: 'InvalidArgument', message: /cannot read size "lots"/ });
    assert.throws(() => parseSize('0'), { code: 'InvalidArgument' });
  });

  it('sizes segments from the limit and gives big blobs their own', () => {
    const policy = new MemoryPolicy(2048 * MiB);
    assert.equal(policy.standardSegmentSize, 256 * MiB);
    assert.equal(policy.segmentSizeFor(1000, 0), 256 * MiB);
    assert.equal(policy.segmentSizeFor(300 * MiB + 1, 0), 302 * MiB);
    assert.equal(policy.segmentSizeFor(10 * MiB, 2030 * MiB), 10 * MiB, 'a tight segment near the limit');
    assert.equal(policy.segmentSizeFor(10 * MiB, 2045 * MiB), 0, 'no room');
    assert.throws(() => policy.segmentSizeFor(MAX_SEGMENT_BYTES + 1, 0), {
      code: 'OutOfMemory',
      message: /larger than the largest segment/,
    });
  });

  it('releases the oldest empty segments first, and only when that makes room', () => {
    const policy = new MemoryPolicy(100 * MiB);
    const segments = [
      { id: 1, size: 40 * MiB, used: 0, idleSince: 20 },
      { id: 2, size: 40 * MiB, used: 64, idleSince: 0 },
      { id: 3, size: 20 * MiB, used: 0, idleSince: 10 },
    ];
    assert.deepEqual(policy.releaseToFit(segments, 100 * MiB, 15 * MiB), [3]);
    assert.deepEqual(policy.releaseToFit(segments, 100 * MiB, 50 * MiB), [3, 1]);
    assert.deepEqual(policy.releaseToFit(segments, 100 * MiB, 70 * MiB), []);
  });

  it('retains the most recently emptied segments past the idle time, up to a quarter of the limit', () => {
    // Idle after 30 s; retained up to 100 MiB for 10 minutes.
    const policy = new MemoryPolicy(400 * MiB, 30_000, undefined, 600_000);
    assert.equal(policy.retainBytes, 100 * MiB);
    const now = 1_000_000;
    const segments = [
      { id: 1, size: 60 * MiB, used: 0, idleSince: now - 40_000 },
      { id: 2, size: 60 * MiB, used: 0, idleSince: now - 50_000 },
      { id: 3, size: 30 * MiB, used: 0, idleSince: now - 60_000 },
      { id: 4, size: 200 * MiB, used: 64, idleSince: now - 90_000 },
      { id: 5, size: 60 * MiB, used: 0, idleSince: now - 10_000 },
    ];
    assert.deepEqual(policy.idle(segments, now), [2], '1 and 3 fit in 100 MiB; 5 is not idle yet; 4 holds a blob');
    const late = policy.idle(segments, now + 600_000).sort((a, b) => a - b);
    assert.deepEqual(late, [1, 2, 3, 5], 'none is kept past the retain time');
    assert.deepEqual(policy.idle(segments, now, 70 * MiB), [2, 3], 'the machine has room for 70 MiB more only');
    assert.deepEqual(policy.idle(segments, now, 0), [1, 2, 3], 'none kept when the machine has no room');
  });
});
