import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';

type RaceResult = { id: string; version: number } | { code: string; message: string };

describe('name versions', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  before(async () => {
    daemon = await startTestDaemon(['--size', '32MiB', '--keep-versions', '3']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  it('each change of a name is a new version; the same object again is not', async () => {
    const [a, b, c] = [await client.put('a'), await client.put('b'), await client.put('c')];
    assert.equal(await client.putName(a, 'history/one'), 1);
    assert.equal(await client.putName(a, 'history/one'), 1, 'the same object makes no new version');
    assert.equal(await client.putName(b, 'history/one', { override: true }), 2);
    assert.equal((await client.put('d', { name: 'history/one', override: true })).length, 17);
    const versions4 = await client.putNames({ 'history/one': c, 'history/two': c }, { override: true });
    assert.deepEqual(versions4, { 'history/one': 4, 'history/two': 1 });
    const versions = await client.versions('history/one');
    assert.deepEqual(
      versions.map((v) => v.version),
      [4, 3, 2],
      '--keep-versions 3 keeps the newest three',
    );
    assert.equal(versions[0].id, c);
    assert.equal(versions[2].id, b);
    assert.ok(versions.every((v) => typeof v.createdAt === 'number' && v.createdAt <= Date.now()));
    assert.ok(versions[0].createdAt >= versions[2].createdAt);
    await assert.rejects(client.versions('history/none'), {
      code: 'NameNotFound',
      message: 'name "history/none" is not published',
    });
  });

  it('get and getName of a kept version; a version not kept is NameNotFound naming both', async () => {
    const first = await client.put({ n: 1 });
    const second = await client.put({ n: 2 });
    await client.putName(first, 'by-version');
    await client.putName(second, 'by-version', { override: true });
    assert.equal(await client.getName('by-version', { version: 1 }), first);
    assert.equal(await client.getName('by-version'), second);
    assert.deepEqual(await client.get('by-version', { version: 1 }), { n: 1 });
    const before = (await client.status()).requests;
    assert.deepEqual(await client.get('by-version', { version: 2 }), { n: 2 });
    // One request for the get (a value resolves from its metadata alone), one for the status call.
    assert.equal((await client.status()).requests - before, 2);
    await assert.rejects(client.get('by-version', { version: 7 }), {
      code: 'NameNotFound',
      message: 'name "by-version" has no version 7 (kept: 2, 1)',
    });
    await assert.rejects(client.getName('nothing-here', { version: 1 }), {
      code: 'NameNotFound',
      message: /"nothing-here".*version 1/,
    });
  });

  it('a kept version pins its object: Conflict without force, force drops that version', async () => {
    const old = await client.put('old');
    const current = await client.put('current');
    await client.putName(old, 'pinning');
    await client.putName(current, 'pinning', { override: true });
    await assert.rejects(client.delete(old), {
      code: 'Conflict',
      message: `object ${old} is version 1 of name "pinning": drop that version first, or delete with force`,
    });
    await client.delete(old, { force: true });
    assert.deepEqual(
      (await client.versions('pinning')).map((v) => v.version),
      [2],
    );
    assert.equal(await client.getName('pinning'), current);
  });

  it('a version the keep limit dropped no longer pins its object', async () => {
    const ids = [await client.put(1), await client.put(2), await client.put(3), await client.put(4)];
    for (const id of ids) await client.putName(id, 'rolling', { override: true });
    await client.delete(ids[0]);
    assert.equal(await client.exists(ids[0]), false);
  });

  it('dropVersion: the previous becomes latest, the last one drops the name', async () => {
    const [a, b] = [await client.put('a'), await client.put('b')];
    await client.putName(a, 'dropping');
    await client.putName(b, 'dropping', { override: true });
    await client.dropVersion('dropping', 2);
    assert.equal(await client.getName('dropping'), a);
    assert.deepEqual(
      (await client.versions('dropping')).map((v) => v.version),
      [1],
    );
    await client.delete(b); // no longer pinned
    const c = await client.put('c');
    assert.equal(await client.putName(c, 'dropping', { override: true }), 3, 'a dropped number is not given again');
    await assert.rejects(client.dropVersion('dropping', 2), {
      code: 'NameNotFound',
      message: 'name "dropping" has no version 2 (kept: 3, 1)',
    });
    await client.dropVersion('dropping', 3);
    await client.dropVersion('dropping', 1);
    assert.deepEqual(await client.listNames({ pattern: 'dropping' }), []);
    await assert.rejects(client.getName('dropping'), { code: 'NameNotFound' });
    await client.delete(a);
  });

  it('expectVersion: 0 only if the name does not exist, N only if it is at N', async () => {
    const [a, b, c] = [await client.put('a'), await client.put('b'), await client.put('c')];
    assert.equal(await client.putName(a, 'expected', { expectVersion: 0 }), 1);
    await assert.rejects(client.putName(b, 'expected', { override: true, expectVersion: 0 }), {
      code: 'Conflict',
      message: 'name "expected": expected version 0, but it is at version 1',
    });
    assert.equal(await client.putName(b, 'expected', { override: true, expectVersion: 1 }), 2);
    // A client's own write never makes its next one conflict.
    assert.equal(await client.putName(c, 'expected', { override: true, expectVersion: 2 }), 3);
    await assert.rejects(client.putName(a, 'expected', { override: true, expectVersion: 2 }), {
      code: 'Conflict',
      message: 'name "expected": expected version 2, but it is at version 3',
    });
    await assert.rejects(client.putName(a, 'never-set', { override: true, expectVersion: 4 }), {
      code: 'Conflict',
      message: 'name "never-set": expected version 4, but it is not published (version 0)',
    });
    assert.equal(await client.getName('expected'), c);
  });

  it('two processes racing with the same expectVersion: exactly one wins', async () => {
    const seed = await client.put('seed');
    await client.putName(seed, 'raced');
    const racers = ['left', 'right'].map((text) => startChild('version-racer.ts', [daemon.socket, 'raced', '1', text]));
    for (const racer of racers) assert.equal(await racer.next(), 'ready');
    for (const racer of racers) racer.send('go');
    const results = await Promise.all(racers.map((racer) => racer.next<RaceResult>()));
    for (const racer of racers) assert.equal(await racer.exited, 0);
    const winners = results.filter((result): result is { id: string; version: number } => 'version' in result);
    const losers = results.filter((result): result is { code: string; message: string } => 'code' in result);
    assert.equal(winners.length, 1, JSON.stringify(results));
    assert.equal(winners[0].version, 2);
    assert.deepEqual(losers, [
      { code: 'Conflict', message: 'name "raced": expected version 1, but it is at version 2' },
    ]);
    assert.equal(await client.getName('raced'), winners[0].id);
  });
});
