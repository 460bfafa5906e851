import * as assert from 'node:assert/strict';
import { native } from '../../src/native';
import { expectThrows } from '../fixtures/trellis-errors';

function xxh64(bytes: Uint8Array): string {
  const checksum = new native.Checksum();
  checksum.updateSync(bytes);
  return checksum.digest();
}

describe('native checksum (XXH64)', () => {
  it('matches the reference XXH64 with seed 0', () => {
    // From xxHash's own tests and `xxhsum -H1`: the empty input, short inputs, and one over 32 bytes.
    assert.equal(xxh64(Buffer.alloc(0)), 'ef46db3751d8e999');
    assert.equal(xxh64(Buffer.from('a')), 'd24ec4f1a98c6e5b');
    assert.equal(xxh64(Buffer.from('abc')), '44bc2cf5ad770999');
    assert.equal(xxh64(Buffer.from('Nobody inspects the spammish repetition')), 'fbcea83c8a378bf1');
  });

  it('gives the same digest however the bytes are split, on the threadpool or not', async () => {
    const bytes = Buffer.alloc(1_000_003);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    const whole = xxh64(bytes);
    const pieces = new native.Checksum();
    let offset = 0;
    for (const size of [1, 31, 32, 33, 64, 7, 999_835]) {
      pieces.updateSync(bytes.subarray(offset, offset + size));
      offset += size;
    }
    assert.equal(offset, bytes.length);
    assert.equal(pieces.digest(), whole);
    const pooled = new native.Checksum();
    await pooled.update(bytes.subarray(0, 500_001));
    await pooled.update(new Uint8Array(bytes.buffer, bytes.byteOffset + 500_001, bytes.length - 500_001));
    assert.equal(pooled.digest(), whole);
  });

  it('refuses a second call while an update runs, and what is not bytes', async () => {
    const checksum = new native.Checksum();
    const running = checksum.update(Buffer.alloc(1 << 20));
    expectThrows(() => checksum.digest(), 'InvalidArgument', 'checksum: wait for update() to settle first');
    await running;
    expectThrows(
      () => checksum.updateSync('text' as unknown as Uint8Array),
      'InvalidArgument',
      'checksum.updateSync(view): expected a Uint8Array',
    );
  });
});
