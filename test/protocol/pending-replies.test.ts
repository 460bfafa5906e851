import * as assert from 'node:assert/strict';
import { PendingReplies } from '../../src/protocol/pending-replies';

describe('PendingReplies', () => {
  it('gives back each waiter once, by seq, and counts what is pending', () => {
    const pending = new PendingReplies<string>(4);
    pending.set(1, 'a');
    pending.set(2, 'b');
    assert.equal(pending.size, 2);
    assert.equal(pending.get(2), 'b');
    assert.equal(pending.take(2), 'b');
    assert.equal(pending.take(2), undefined);
    assert.equal(pending.get(2), undefined);
    assert.equal(pending.take(7), undefined);
    assert.equal(pending.size, 1);
    assert.equal(pending.take(1), 'a');
    assert.equal(pending.size, 0);
  });

  it('keeps a request whose slot an older one still holds, and a seq that shares a slot is not mixed up', () => {
    const pending = new PendingReplies<string>(4);
    pending.set(1, 'waits long');
    for (let seq = 2; seq <= 9; seq++) pending.set(seq, `r${seq}`);
    // 5 and 9 share the slot of 1, which is still pending.
    assert.equal(pending.size, 9);
    assert.equal(pending.get(5), 'r5');
    assert.equal(pending.take(9), 'r9');
    assert.equal(pending.take(5), 'r5');
    assert.equal(pending.take(1), 'waits long');
    assert.equal(pending.take(1), undefined);
    for (let seq = 2; seq <= 8; seq++) if (seq !== 5) assert.equal(pending.take(seq), `r${seq}`);
    assert.equal(pending.size, 0);
    pending.set(13, 'reused slot');
    assert.equal(pending.take(13), 'reused slot');
  });

  it('forEach visits every waiter still pending, in slots and beside them, once', () => {
    const pending = new PendingReplies<string>(4);
    for (let seq = 1; seq <= 9; seq++) pending.set(seq, `r${seq}`);
    pending.take(3);
    pending.take(9);
    const seen: string[] = [];
    pending.forEach((waiter) => seen.push(waiter));
    assert.deepEqual(seen.sort(), ['r1', 'r2', 'r4', 'r5', 'r6', 'r7', 'r8']);
    pending.takeAll();
    pending.forEach(() => assert.fail('nothing is pending'));
  });

  it('takeAll empties it, oldest request first', () => {
    const pending = new PendingReplies<number>(4);
    for (const seq of [3, 1, 7, 2, 11, 6]) pending.set(seq, seq);
    pending.take(2);
    assert.deepEqual(pending.takeAll(), [1, 3, 6, 7, 11]);
    assert.equal(pending.size, 0);
    assert.equal(pending.take(3), undefined);
    assert.deepEqual(pending.takeAll(), []);
  });

  it('finds nothing for seqs the daemon should never send', () => {
    const pending = new PendingReplies<string>(4);
    pending.set(1, 'a');
    for (const seq of [0, -3, 1.5, Number.NaN]) assert.equal(pending.take(seq), undefined);
    assert.equal(pending.size, 1);
  });

  it('answers as a Map would, for replies in any order, some waiting long, seqs far past the slots', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pending = new PendingReplies<number>(8);
    const model = new Map<number, number>();
    let nextSeq = 1;
    for (let step = 0; step < 20000; step++) {
      const roll = random();
      if (roll < 0.5 || model.size === 0) {
        const seq = nextSeq++;
        pending.set(seq, seq * 10);
        model.set(seq, seq * 10);
      } else if (roll < 0.97) {
        // Mostly the oldest few (prompt replies), sometimes any one (a request that waited long).
        const seqs = [...model.keys()];
        const seq = seqs[Math.floor(random() * (random() < 0.8 ? Math.min(3, seqs.length) : seqs.length))];
        assert.equal(pending.get(seq), model.get(seq));
        assert.equal(pending.take(seq), model.get(seq));
        model.delete(seq);
      } else {
        // A seq no request has (never made, or answered already).
        const seq = random() < 0.5 ? nextSeq + 1 : Math.max(1, nextSeq - 1 - Math.floor(random() * 50));
        assert.equal(pending.take(seq), model.get(seq));
        model.delete(seq);
      }
      assert.equal(pending.size, model.size);
    }
    assert.deepEqual(pending.takeAll(), [...model.values()]);
  });
});
