import * as assert from 'node:assert/strict';
import { native } from '../../src/native';

describe('native allocator', () => {
  it('hands out 64-byte-aligned, non-overlapping blocks and coalesces on free', () => {
    const allocator = new native.Allocator(1 << 20);
    const blocks: Array<[number, number]> = [];
    let seed = 1;
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 48271) % 2147483647;
      const size = seed % 3000;
      const offset = allocator.allocate(size);
      if (offset < 0) break;
      assert.equal(offset % 64, 0);
      blocks.push([offset, Math.max(64, Math.ceil(size / 64) * 64)]);
      if (seed % 3 === 0) {
        const [victim] = blocks.splice(seed % blocks.length, 1);
        assert.equal(allocator.free(victim[0]), victim[1]);
      }
    }
    const sorted = [...blocks].sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < sorted.length; i++)
      assert.ok(sorted[i - 1][0] + sorted[i - 1][1] <= sorted[i][0], 'blocks overlap');
    for (const [offset] of blocks) allocator.free(offset);
    assert.equal(allocator.used, 0);
    assert.equal(allocator.largestFree, 1 << 20, 'everything coalesced back into one range');
  });

  it('reports a full allocator with -1 and ignores unknown frees', () => {
    const allocator = new native.Allocator(4096);
    assert.equal(allocator.allocate(4096), 0);
    assert.equal(allocator.allocate(1), -1);
    assert.equal(allocator.free(64), 0);
    assert.equal(allocator.free(0), 4096);
  });

  it('splits a block into a front and a rest that are freed on their own (put ring arenas)', () => {
    const allocator = new native.Allocator(4096);
    const arena = allocator.allocate(1024);
    const other = allocator.allocate(64);
    // 100 bytes take 128; the rest (896) is a block of its own at 128.
    assert.equal(allocator.split(arena, 100), arena + 128);
    assert.equal(allocator.split(arena + 128, 0), arena + 192, 'an empty object still takes 64 bytes');
    assert.equal(allocator.used, 1024 + 64, 'a split takes and frees nothing');
    assert.equal(allocator.split(arena + 192, 832), -1, 'the front would be the whole block');
    assert.equal(allocator.split(arena + 64, 10), -1, 'not the start of a block');
    assert.equal(allocator.free(arena + 128), 64);
    assert.equal(allocator.free(arena), 128);
    assert.equal(allocator.free(arena + 192), 832);
    assert.equal(allocator.free(other), 64);
    assert.equal(allocator.used, 0);
    assert.equal(allocator.largestFree, 4096, 'the pieces coalesce back into one range');
    assert.throws(() => allocator.split(0, -1), { code: 'InvalidArgument' });
  });

  it('checks its arguments with typed errors', () => {
    assert.throws(() => new native.Allocator(-5), { code: 'InvalidArgument', message: /expected a positive number/ });
    const allocator = new native.Allocator(4096);
    assert.throws(() => allocator.allocate('big' as unknown as number), { code: 'InvalidArgument' });
  });
});

describe('native segments', () => {
  it('a segment larger than /dev/shm can hold fails with OutOfMemory, not SIGBUS', () => {
    // Never try this with a memfd ('' dir): nothing bounds it but the OOM killer.
    assert.throws(() => new native.Segment(2 ** 50, 'too-big', '/dev/shm'), {
      code: 'OutOfMemory',
      message: /cannot reserve a 1125899906842624-byte segment/,
    });
  });
});
