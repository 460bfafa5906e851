/**
 * Labels and lineage across two daemons on one etcd: a label set on one daemon shows in the
 * other's listObjects({ labels }) and getMeta; labels set on one object from both daemons at
 * the same time all stay (a compare-and-swap on the object's record); a lineage read on the
 * other daemon names the parent's name and version, and shows a parent deleted since as missing.
 */
import * as assert from 'node:assert/strict';
import { waitFor } from '../fixtures/cluster';
import { startTestCluster, type ClusterDaemon, type TestCluster } from '../fixtures/cluster-daemons';

const PROPAGATION_MS = 3_000;
const CONCURRENT_LABELS = 6;

describe('cluster labels and lineage', function () {
  this.timeout(30_000);
  let cluster: TestCluster | undefined;
  let d1: ClusterDaemon, d2: ClusterDaemon;
  before(async function () {
    this.timeout(40_000);
    cluster = await startTestCluster('labels', 2);
    [d1, d2] = cluster.daemons;
  });
  after(() => cluster?.stop());

  const listedOn = async (d: ClusterDaemon, labels: Record<string, string>) =>
    (await d.client.listObjects({ labels })).map((summary) => summary.id);

  it("a label set on one daemon shows in the other's listObjects({ labels }) and getMeta", async () => {
    const id = await d1.client.put({ rows: 3 }, { persist: true, labels: { stage: 'raw', team: 'a' } });
    await waitFor(
      'daemon 2 to list it by label',
      async () => (await listedOn(d2, { stage: 'raw' })).includes(id),
      PROPAGATION_MS,
    );
    assert.deepEqual(await d1.client.label(id, { stage: 'cooked', team: null }), { stage: 'cooked' });
    await waitFor(
      'daemon 2 to list it by its new label only',
      async () =>
        (await listedOn(d2, { stage: 'cooked' })).includes(id) && !(await listedOn(d2, { stage: 'raw' })).includes(id),
      PROPAGATION_MS,
    );
    assert.deepEqual((await d2.client.getMeta(id)).labels, { stage: 'cooked' });
    // And labelled from the daemon that does not hold it: the holder takes the labels too.
    assert.deepEqual(await d2.client.label(id, { by: 'two' }), { stage: 'cooked', by: 'two' });
    await waitFor(
      'daemon 1 to take the label set on daemon 2',
      async () => (await d1.client.getMeta(id)).labels.by === 'two',
      PROPAGATION_MS,
    );
    assert.deepEqual(await listedOn(d1, { by: 'two' }), [id]);
  });

  it('labels set on one object from both daemons at once all stay', async () => {
    const id = await d1.client.put(Buffer.from('shared'), { persist: true });
    await waitFor('daemon 2 to see it', () => d2.client.exists(id), PROPAGATION_MS);
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < CONCURRENT_LABELS; i++) {
      calls.push(d1.client.label(id, { [`one-${i}`]: String(i) }), d2.client.label(id, { [`two-${i}`]: String(i) }));
    }
    await Promise.all(calls);
    const expected: Record<string, string> = {};
    for (let i = 0; i < CONCURRENT_LABELS; i++) expected[`one-${i}`] = expected[`two-${i}`] = String(i);
    for (const d of [d1, d2]) {
      await waitFor(
        `daemon ${d.instanceId} to show every label`,
        async () => Object.keys((await d.client.getMeta(id)).labels).length === 2 * CONCURRENT_LABELS,
        PROPAGATION_MS,
      );
      assert.deepEqual((await d.client.getMeta(id)).labels, expected);
    }
    // The bytes are untouched, on the holder.
    assert.equal((await d1.client.getBlob(id)).buffer.toString(), 'shared');
  });

  it("a lineage read on the other daemon names the parent's name and version, and a parent deleted since is missing", async () => {
    const first = await d1.client.put({ source: 1 }, { name: 'lab/raw' });
    const raw = await d1.client.put({ source: 2 });
    assert.equal(await d1.client.putName(raw, 'lab/raw', { override: true }), 2);
    await waitFor(
      'daemon 2 to see lab/raw at version 2',
      async () => (await d2.client.getName('lab/raw').catch(() => '')) === raw,
      PROPAGATION_MS,
    );
    const clean = await d2.client.put({ cleaned: true }, { persist: true, parents: ['lab/raw', first] });
    await waitFor('daemon 1 to see the child', () => d1.client.exists(clean), PROPAGATION_MS);
    const expected = [
      { depth: 0, id: clean, typename: 'trellis::Value', missing: false },
      { depth: 1, id: raw, typename: 'trellis::Value', name: 'lab/raw', version: 2, missing: false },
      { depth: 1, id: first, typename: 'trellis::Value', missing: false },
    ];
    assert.deepEqual(await d1.client.lineage(clean), expected);
    assert.deepEqual(await d2.client.lineage(clean), expected);

    await d1.client.delete(raw, { force: true });
    await waitFor('daemon 2 to see the parent go', async () => !(await d2.client.exists(raw)), PROPAGATION_MS);
    const after = await d2.client.lineage(clean);
    assert.deepEqual(after[1], { depth: 1, id: raw, typename: null, name: 'lab/raw', version: 2, missing: true });
  });
});
