/**
 * What a PrefixMirror keeps (this daemon's own records, the instances, pins) it keeps for as long
 * as the keys live: each value must hold its own bytes, not a view of a larger buffer (etcd's
 * whole response, msgpackr's 8 KiB working buffer, Node's shared pool) that one small value would
 * keep alive.
 */
import * as assert from 'node:assert/strict';
import { commitInBatches } from '../../src/daemon/metadata/batched-transaction';
import { PrefixMirror } from '../../src/daemon/metadata/prefix-mirror';
import { encodeRecord } from '../../src/daemon/cluster/records';
import { connectEtcd, uniquePrefix, waitFor } from '../fixtures/cluster';
import { startEtcd, type TestEtcd } from '../fixtures/etcd';
import { onCleanup } from '../fixtures/setup';

const valueOf = (n: number) => Buffer.alloc(100, n);

function assertOwn(mirror: PrefixMirror, key: string, expected: Buffer): void {
  const value = mirror.get(key)?.value;
  assert.ok(value, `${key} is mirrored`);
  assert.deepEqual(value, expected);
  assert.equal(value.buffer.byteLength, value.byteLength, `${key}: a view of a buffer of ${value.buffer.byteLength}`);
}

describe('PrefixMirror: the values it keeps', function () {
  this.timeout(30_000);
  let etcd: TestEtcd;
  before(async function () {
    etcd = await startEtcd();
  });
  after(() => etcd.dispose());

  it('from the snapshot, from the watch and from local writes, each value holds its own bytes', async () => {
    const connection = connectEtcd(etcd.endpoint, uniquePrefix('mirror'));
    await commitInBatches(
      connection,
      [1, 2, 3].map((n) => ({ kind: 'put', key: `objects/s${n}`, value: valueOf(n) }) as const),
    );
    const mirror = new PrefixMirror(connection, ['objects/']);
    onCleanup(() => mirror.stop());
    await mirror.start();
    for (const n of [1, 2, 3]) assertOwn(mirror, `objects/s${n}`, valueOf(n));

    await commitInBatches(connection, [{ kind: 'put', key: 'objects/w', value: valueOf(4) }]);
    await waitFor('the watch to deliver the put', () => mirror.get('objects/w') !== undefined, 5_000);
    assertOwn(mirror, 'objects/w', valueOf(4));

    // A local write hands over what it committed: here msgpackr's output, a slice of its working buffer.
    const encoded = encodeRecord({
      typename: 'trellis::Value',
      nbytes: 0,
      createdAt: 1,
      labels: {},
      fields: {},
      members: {},
      blob: false,
    });
    assert.ok(encoded.buffer.byteLength > encoded.byteLength, 'the test hands over a view');
    mirror.applyLocal('objects/local', { value: encoded, lease: '0' }, 10n ** 12n);
    assertOwn(mirror, 'objects/local', Buffer.from(encoded));
  });
});
