import * as assert from 'node:assert/strict';
import { ReadCache } from '../../src/types/read-cache';

/** A source that decodes item i as `item i` and counts its decodes. */
function countingSource(count: number) {
  return {
    count,
    decodes: 0,
    itemAt(index: number): string {
      this.decodes++;
      return `item ${index}`;
    },
  };
}

function readAll(cache: ReadCache<string>, count: number): string[] {
  return Array.from({ length: count }, (_, i) => cache.read(i));
}

describe('ReadCache', () => {
  it('keeps nothing from a single pass, and keeps items once the list is read again', () => {
    const count = 3000; // two full pages of 1024 and a partial one
    const source = countingSource(count);
    const cache = new ReadCache(source);
    const expected = Array.from({ length: count }, (_, i) => `item ${i}`);

    assert.deepEqual(readAll(cache, count), expected);
    assert.equal(source.decodes, count, 'the first pass decodes every item');
    assert.deepEqual(readAll(cache, count), expected);
    assert.equal(source.decodes, 2 * count, 'the second pass decodes again, while its pages are admitted');
    assert.deepEqual(readAll(cache, count), expected);
    assert.equal(source.decodes, 2 * count, 'the third pass is served from the cache');
  });

  it('admits only the pages that are read again', () => {
    const source = countingSource(4096);
    const cache = new ReadCache(source);
    for (let pass = 0; pass < 3; pass++) for (let i = 0; i < 1024; i++) cache.read(i);
    assert.equal(source.decodes, 2048);
    cache.read(2000);
    cache.read(2000);
    assert.equal(source.decodes, 2050, 'a page read twice is far from read more times than it holds');
  });
});
