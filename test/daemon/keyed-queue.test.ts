import * as assert from 'node:assert/strict';
import { KeyedQueue } from '../../src/daemon/keyed-queue';

/** A task that logs its start and end and finishes when `release` is called. */
function gatedTask(log: string[], name: string): { run: () => Promise<string>; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  return {
    release,
    run: async () => {
      log.push(`${name} start`);
      await gate;
      log.push(`${name} end`);
      return name;
    },
  };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('keyed queue', () => {
  it('runs tasks sharing a key in call order and the others at once', async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const a = gatedTask(log, 'a');
    const b = gatedTask(log, 'b');
    const c = gatedTask(log, 'c');
    const results = [queue.run(['x', 'y'], a.run), queue.run(['y'], b.run), queue.run(['z'], c.run)];
    await turn();
    assert.deepEqual(log, ['a start', 'c start'], 'b waits for a (key y); c shares nothing');
    b.release();
    c.release();
    await turn();
    assert.deepEqual(log, ['a start', 'c start', 'c end']);
    a.release();
    assert.deepEqual(await Promise.all(results), ['a', 'b', 'c']);
    assert.deepEqual(log, ['a start', 'c start', 'c end', 'a end', 'b start', 'b end']);
  });

  it('a failed task does not stop the next one; idle waits for everything queued', async () => {
    const queue = new KeyedQueue();
    const failing = queue.run(['k'], () => Promise.reject(new Error('boom')));
    const next = queue.run(['k'], async () => 'after');
    await assert.rejects(failing, /boom/);
    assert.equal(await next, 'after');
    let done = false;
    void queue.run(['q'], async () => {
      await turn();
      done = true;
    });
    await queue.idle();
    assert.ok(done);
  });
});
