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
    for (let pass = 0; pass < 3; pass++) for (let i = 0; i < 2048; i++) cache.read(i);
    assert.equal(source.decodes, 4096, 'pages 0 and 1: decoded by two passes, kept from the second');
    cache.read(3000);
    cache.read(3000);
    assert.equal(source.decodes, 4098, 'a page read twice is far from read more times than it holds');
    for (let i = 0; i < 2048; i++) assert.equal(cache.read(i), `item ${i}`);
    assert.equal(source.decodes, 4098, 'the kept pages still serve');
  });

  it('serves reads of the current page again without decoding them', () => {
    const source = countingSource(1500);
    const cache = new ReadCache(source);
    for (let pass = 0; pass < 3; pass++) for (let i = 0; i < 1024; i++) cache.read(i);
    assert.equal(source.decodes, 1024);
  });

  it('decodes a page at a time only for reads in order; reads in no order decode their item alone', () => {
    const count = 5000;
    const source = countingSource(count);
    const cache = new ReadCache(source);
    // Scattered reads, each on another page than the one before: one decode each.
    const scattered = [4100, 17, 3333, 1500, 2900, 42, 4999];
    for (const i of scattered) assert.equal(cache.read(i), `item ${i}`);
    assert.equal(source.decodes, scattered.length);
    // A pass from the middle of a page: the first read alone, the next one decodes its page.
    source.decodes = 0;
    for (let i = 2500; i < 2600; i++) assert.equal(cache.read(i), `item ${i}`);
    assert.equal(source.decodes, 1 + 1024);
    // The last, partial page decodes only the items it has.
    source.decodes = 0;
    for (let i = 4096; i < count; i++) assert.equal(cache.read(i), `item ${i}`);
    assert.equal(source.decodes, count - 4096);
  });

  it('serves the right items after a page it decoded into the reused window failed, and keeps pages apart from it', () => {
    // Item 1500, on page 1, does not decode; the first pass's pages share one window array.
    const source = {
      count: 3000,
      itemAt(index: number): string {
        if (index === 1500) throw new Error('item 1500 is corrupt');
        return `item ${index}`;
      },
    };
    const cache = new ReadCache(source);
    for (let i = 0; i < 1024; i++) assert.equal(cache.read(i), `item ${i}`);
    // Page 1 fails part way, after overwriting the start of the array that shows page 0.
    assert.equal(cache.read(1024), 'item 1024');
    assert.throws(() => cache.read(1500), /item 1500 is corrupt/);
    for (let i = 0; i < 1024; i++) assert.equal(cache.read(i), `item ${i}`, `page 0 again, item ${i}`);
    // Page 0 is kept now (read twice); page 2 is then decoded into the reused array, page 0 stays.
    for (let i = 2048; i < 3000; i++) assert.equal(cache.read(i), `item ${i}`);
    for (let i = 0; i < 1024; i++) assert.equal(cache.read(i), `item ${i}`, `kept page 0, item ${i}`);
  });
});
