import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';

describe('delete and the object graph', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  let baseline: number;
  before(async () => {
    daemon = await startTestDaemon(['--size', '32MiB']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });
  beforeEach(async () => {
    baseline = (await client.status()).memoryUsage;
  });
  afterEach(async () => {
    const status = await client.status();
    assert.equal(status.memoryUsage, baseline, 'memory back to exactly its baseline');
  });

  /** parent -> { left: blob, right: blob } */
  async function pair(): Promise<{ parent: string; left: string; right: string }> {
    const [left, right] = await client.createBlobs([1000, 3000]);
    const parent = await client.createMetadata(
      { typename: 'test::Pair', members: { left: left.id, right: right.id } },
      { seal: [left, right] },
    );
    return { parent, left: left.id, right: right.id };
  }

  it('deep delete (the default) removes members nothing else uses', async () => {
    const { parent, left, right } = await pair();
    await client.delete(parent);
    for (const id of [parent, left, right]) assert.equal(await client.exists(id), false);
  });

  it('shallow delete leaves the members', async () => {
    const { parent, left, right } = await pair();
    await client.delete(parent, { deep: false });
    assert.equal(await client.exists(parent), false);
    assert.equal(await client.exists(left), true);
    await client.delete([left, right]);
  });

  it('a member another object shares survives a deep delete of one parent', async () => {
    const { parent, left, right } = await pair();
    const other = await client.createMetadata({ typename: 'test::Holder', members: { kept: left } });
    await client.delete(parent);
    assert.equal(await client.exists(left), true);
    assert.equal(await client.exists(right), false);
    await client.delete(other);
    assert.equal(await client.exists(left), false);
  });

  it('an object that is a member of another is not deleted unless forced', async () => {
    const { parent, left } = await pair();
    await assert.rejects(client.delete(left), {
      code: 'Conflict',
      message: `object ${left} is a member of ${parent}: delete that first, or delete with force`,
    });
    assert.equal(await client.exists(left), true);
    await client.delete(left, { force: true });
    assert.equal(await client.exists(left), false);
    await assert.rejects(client.get(parent), { code: 'ObjectNotFound', message: /member "left" .* was deleted/ });
    await client.delete(parent);
  });

  it('a named object is not deleted unless forced; force drops its names', async () => {
    const { parent } = await pair();
    await client.putName(parent, 'graph/pinned');
    await assert.rejects(client.delete(parent), { code: 'Conflict', message: /is published as "graph\/pinned"/ });
    assert.deepEqual(await client.listNames({ pattern: 'graph/*' }), ['graph/pinned']);
    await client.delete(parent, { force: true });
    assert.deepEqual(await client.listNames({ pattern: 'graph/*' }), []);
  });

  it('a deep delete keeps members that a name still publishes', async () => {
    const { parent, left } = await pair();
    await client.putName(left, 'graph/left');
    await client.delete(parent);
    assert.equal(await client.exists(left), true);
    await client.dropName('graph/left');
    await client.delete(left);
  });

  it('deleting a parent and its member together is allowed', async () => {
    const { parent, left } = await pair();
    await client.delete([left, parent]);
    assert.equal(await client.exists(parent), false);
  });

  it('metadata is validated: typename, members, reserved keys; nothing changes on error', async () => {
    const before = await client.status();
    const [blob] = await client.createBlobs([10]);
    await assert.rejects(client.createMetadata({} as never), {
      code: 'InvalidArgument',
      message: /a typename is required/,
    });
    await assert.rejects(client.createMetadata({ typename: 'bad type' }), {
      code: 'InvalidArgument',
      message: /is not a typename/,
    });
    await assert.rejects(client.createMetadata({ typename: 't::T', members: { m: 'o00000000deadbeef' } }), {
      code: 'ObjectNotFound',
      message: 'member "m": object o00000000deadbeef does not exist',
    });
    await assert.rejects(client.createMetadata({ typename: 't::T', members: { m: blob.id } }), {
      code: 'NotSealed',
      message: /member "m".* is not sealed/,
    });
    await assert.rejects(client.createMetadata({ typename: 't::T', nbytes: 5 }), {
      code: 'InvalidArgument',
      message: /"nbytes" is reserved/,
    });
    await assert.rejects(client.createMetadata({ typename: 't::T', members: { m: 'not-an-id' } }), {
      code: 'InvalidArgument',
    });
    await blob.abort();
    const after = await client.status();
    assert.equal(after.objects, before.objects);
  });
});
