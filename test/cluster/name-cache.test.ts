/**
 * Names held with use (cluster/name-watches.ts): a daemon holds the names of its own objects and
 * a bounded cache of names it read, each watched per key. A cached name follows changes made
 * anywhere; getName(wait) wakes on a name another daemon publishes; the cache stays within
 * --name-cache; listNames reads etcd; a name on another daemon's object still pins it there,
 * as a kept version too.
 */
import * as assert from 'node:assert/strict';
import { waitFor } from '../fixtures/cluster';
import { startClusterDaemons, type ClusterDaemon } from '../fixtures/cluster-daemons';
import { startEtcd, type TestEtcd } from '../fixtures/etcd';
import { pause } from '../fixtures/pause';

const PROPAGATION_MS = 3_000;
const NAME_CACHE = 8;
/** Long enough for a request to reach a stopped daemon's socket; far below its lease (2 s). */
const STOPPED_MS = 200;

describe('cluster name cache', function () {
  this.timeout(30_000);
  let etcd: TestEtcd | undefined;
  let a: ClusterDaemon, b: ClusterDaemon, c: ClusterDaemon;
  before(async function () {
    this.timeout(40_000);
    etcd = await startEtcd();
    [a, b, c] = await startClusterDaemons(etcd.endpoint, 3, 'name-cache', 2, ['--name-cache', String(NAME_CACHE)]);
  });
  after(async () => {
    await Promise.all([a, b, c].filter(Boolean).map((d) => d.daemon.stop()));
    await etcd?.dispose();
  });

  it('a name read on a daemon that never saw it follows overrides and deletes made on another', async () => {
    const first = await a.client.put('first', { name: 'cached/moving' });
    assert.equal(await b.client.getName('cached/moving'), first, 'one etcd read on a miss');
    assert.deepEqual(await b.client.get('cached/moving'), 'first');

    const second = await a.client.put('second');
    await a.client.putName(second, 'cached/moving', { override: true });
    await waitFor(
      'daemon b to see the override',
      async () => (await b.client.getName('cached/moving')) === second,
      PROPAGATION_MS,
    );
    for (let i = 0; i < 5; i++) assert.equal(await b.client.getName('cached/moving'), second, 'never the old target');
    assert.deepEqual(
      (await b.client.versions('cached/moving')).map((v) => v.id),
      [second, first],
    );

    await a.client.dropName('cached/moving');
    await waitFor(
      'daemon b to see the name dropped',
      async () => (await b.client.getName('cached/moving').catch((e: { code?: string }) => e.code)) === 'NameNotFound',
      PROPAGATION_MS,
    );
    // A name absent when first read, published later: the watch on the missing key brings it.
    await assert.rejects(b.client.getName('cached/later'), { code: 'NameNotFound' });
    const later = await c.client.put('later', { name: 'cached/later' });
    await waitFor(
      'daemon b to see a name it missed before',
      async () => (await b.client.getName('cached/later').catch(() => undefined)) === later,
      PROPAGATION_MS,
    );
  });

  it('getName(wait) on one daemon wakes when a third publishes, and times out cleanly', async () => {
    const waiting = b.client.getName('wait/from-c', { wait: true, timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const id = await c.client.put({ from: 'c' }, { name: 'wait/from-c' });
    assert.equal(await waiting, id);
    await assert.rejects(b.client.getName('wait/never', { wait: true, timeoutMs: 200 }), {
      code: 'NameNotFound',
      message: 'name "wait/never" was not published within 200 ms',
    });
  });

  it('holds at most --name-cache names of other daemons, however many it reads', async () => {
    const count = NAME_CACHE * 4;
    const ids = await Promise.all(Array.from({ length: count }, (_, i) => a.client.put(i)));
    await a.client.putNames(Object.fromEntries(ids.map((id, i) => [`bound/${i}`, id])));
    const before = (await c.client.status()).names;
    for (let i = 0; i < count; i++) assert.equal(await c.client.getName(`bound/${i}`), ids[i]);
    for (let i = 0; i < count; i++) assert.equal(await c.client.getName(`bound/${i}`), ids[i], 'read again');
    const held = (await c.client.status()).names;
    assert.ok(held <= NAME_CACHE + before, `daemon c holds ${held} names (cache ${NAME_CACHE}, own ${before})`);
    assert.ok((await a.client.status()).names >= count, 'the owner keeps the names of its objects');
  });

  it('listNames reads every daemon’s names from etcd', async () => {
    await a.client.put(1, { name: 'list/a' });
    await b.client.put(2, { name: 'list/b' });
    await c.client.put(3, { name: 'list/c' });
    for (const d of [a, b, c]) {
      assert.deepEqual(await d.client.listNames({ pattern: 'list/*' }), ['list/a', 'list/b', 'list/c']);
    }
  });

  it('a name put through another daemon pins its object on the owner, as latest and as a kept version', async () => {
    const x = await a.client.put('x');
    await a.client.persist(x);
    await waitFor('daemon b to see x', () => b.client.exists(x), PROPAGATION_MS);
    await b.client.putName(x, 'pins/remote');
    await waitFor(
      'daemon a to refuse deleting x',
      async () =>
        (await a.client.delete(x).then(
          () => 'deleted',
          (e: { code?: string }) => e.code,
        )) === 'Conflict',
      PROPAGATION_MS,
    );
    // Moved to b's object: x stays pinned by its kept version.
    const y = await b.client.put('y');
    await b.client.putName(y, 'pins/remote', { override: true });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await assert.rejects(a.client.delete(x), { code: 'Conflict' });
    await assert.rejects(c.client.delete(x), { code: 'Conflict' });
    // A forced delete through a third daemon drops the version that points to x.
    await c.client.delete(x, { force: true });
    await waitFor(
      'daemon b to see the version dropped',
      async () => (await b.client.versions('pins/remote')).every((v) => v.id !== x),
      PROPAGATION_MS,
    );
    await waitFor('daemon a to free x', async () => !(await a.client.exists(x)), PROPAGATION_MS);
  });

  it('the owner refuses to delete an object named through another daemon before its watch told it', async () => {
    const x = await a.client.put('late');
    await a.client.persist(x);
    await waitFor('daemon b to see x', () => b.client.exists(x), PROPAGATION_MS);
    // Stopped, daemon a learns of the name (its pin, then the name) only after the delete arrives.
    const resume = pause(a.daemon.process);
    await b.client.putName(x, 'pins/late');
    const deleting = a.client.delete(x).then(
      () => 'deleted',
      (e: { code?: string }) => e.code,
    );
    await new Promise((resolve) => setTimeout(resolve, STOPPED_MS));
    resume();
    assert.equal(await deleting, 'Conflict');
    assert.ok(await a.client.exists(x));
    await assert.rejects(c.client.delete(x), { code: 'Conflict' });
    assert.equal(await c.client.getName('pins/late'), x);
  });
});
