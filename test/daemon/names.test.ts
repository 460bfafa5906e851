import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';

describe('names', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  before(async () => {
    daemon = await startTestDaemon(['--size', '32MiB']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  it('a name outlives the process that published it', async () => {
    const publisher = startChild('name-publisher.ts', [daemon.socket, 'outlives/creator', '0', 'still here']);
    await publisher.next();
    assert.equal(await publisher.exited, 0);
    assert.deepEqual(await client.get('outlives/creator'), { text: 'still here' });
  });

  it('a taken name is refused with NameExists unless override, and override moves it', async () => {
    const first = await client.put('first');
    const second = await client.put('second');
    await client.putName(first, 'taken');
    await client.putName(first, 'taken'); // the same object again is fine
    await assert.rejects(client.putName(second, 'taken'), {
      code: 'NameExists',
      message: `name "taken" is taken by ${first}; pass override to move it`,
    });
    await assert.rejects(client.put('third', { name: 'taken' }), { code: 'NameExists' });
    assert.equal(await client.getName('taken'), first);
    await client.putName(second, 'taken', { override: true });
    assert.equal(await client.getName('taken'), second);
    assert.equal(await client.exists(first), true, 'moving a name does not delete the old object');
    // The old object stays pinned by the name's kept version 1 until that version is dropped.
    await assert.rejects(client.delete(first), { code: 'Conflict' });
    await client.dropVersion('taken', 1);
    await client.delete(first);
  });

  it('putNames is atomic: one conflict and nothing changes', async () => {
    const a = await client.put('a');
    const b = await client.put('b');
    await client.putName(a, 'batch/existing');
    await assert.rejects(client.putNames({ 'batch/new-1': a, 'batch/existing': b, 'batch/new-2': b }), {
      code: 'NameExists',
    });
    assert.deepEqual(await client.listNames({ pattern: 'batch/*' }), ['batch/existing']);
    await assert.rejects(client.putNames({ 'batch/new-1': a, 'batch/missing': 'o00000000deadbeef' }), {
      code: 'ObjectNotFound',
    });
    assert.deepEqual(await client.listNames({ pattern: 'batch/*' }), ['batch/existing']);
    await client.putNames({ 'batch/new-1': a, 'batch/existing': b }, { override: true });
    assert.deepEqual(await client.listNames({ pattern: 'batch/*' }), ['batch/existing', 'batch/new-1']);
    assert.equal(await client.getName('batch/existing'), b);
  });

  it('getName waits for a name another process publishes later', async () => {
    const waiting = client.getName('later/published', { wait: true, timeoutMs: 20_000 });
    const publisher = startChild('name-publisher.ts', [daemon.socket, 'later/published', '300', 'arrived']);
    const { id } = await publisher.next<{ id: string }>();
    assert.equal(await waiting, id);
    assert.deepEqual(await client.get('later/published'), { text: 'arrived' });
  });

  it('getName throws NameNotFound at once, or after waiting, saying how long', async () => {
    await assert.rejects(client.getName('never/published'), {
      code: 'NameNotFound',
      message: 'name "never/published" is not published',
    });
    await assert.rejects(client.getName('never/published', { wait: true, timeoutMs: 150 }), {
      code: 'NameNotFound',
      message: 'name "never/published" was not published within 150 ms',
    });
    await assert.rejects(client.get('never/published'), { code: 'NameNotFound' });
  });

  it('a waiting getName does not hold back the same client’s other requests', async () => {
    const waiting = client.getName('slow/name', { wait: true, timeoutMs: 5000 });
    const id = await client.put('meanwhile');
    await client.putName(id, 'slow/name');
    assert.equal(await waiting, id);
  });

  it('dropping a missing name is a no-op; listing is sorted and takes a glob', async () => {
    await client.dropName('not/there');
    const id = await client.put(1);
    for (const name of ['zeta', 'alpha', 'list/b', 'list/a', 'list/c']) await client.putName(id, name);
    assert.deepEqual(await client.listNames({ pattern: 'list/*' }), ['list/a', 'list/b', 'list/c']);
    const all = await client.listNames();
    assert.deepEqual(all, [...all].sort());
    await client.dropName('alpha');
    assert.equal((await client.listNames({ pattern: 'alpha' })).length, 0);
  });

  it('names are validated with clear errors', async () => {
    const id = await client.put(1);
    const bad = [
      '',
      'has space',
      '/leading',
      'trailing/',
      'a//b',
      '../up',
      'x/../y',
      'o0000000000000001',
      'x'.repeat(257),
      'tab\tname',
    ];
    for (const name of bad) {
      await assert.rejects(client.putName(id, name), (error: Error & { code: string }) => {
        assert.equal(error.code, 'InvalidArgument', JSON.stringify(name));
        assert.match(error.message, /name/);
        return true;
      });
    }
    for (const name of ['dataset', 'prices/2026-11', 'model:v3', 'user@host', 'a_b.c-d+e=f'])
      await client.putName(id, name);
  });
});
