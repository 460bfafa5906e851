/**
 * `trellis export` and `trellis import` in child processes against real daemons: an object goes
 * out of one daemon as a directory and as a .tar, into a second daemon under a name, and comes
 * back with the same content; errors are the client's code on one stderr line.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect, type TrellisClient } from '../../src/connect';
import { isTrellisError } from '../../src/errors';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';
import { runTrellis, trellisOk } from '../fixtures/trellis-cli';

const TOP_HASH_LINE = /^[0-9a-f]{64}\n$/;
const ID_LINE = /^o[0-9a-f]{16}\n$/;
const CSV = 'city,population,area\nLyon,522250,47.87\n"Saint-Étienne, Loire",173089,79.97\nAnnecy,,66.94\n';

describe('trellis export and import', () => {
  let source: TestDaemon;
  let target: TestDaemon;
  let sourceClient: TrellisClient;
  let targetClient: TrellisClient;

  before(async () => {
    [source, target] = await Promise.all([startTestDaemon(), startTestDaemon()]);
    [sourceClient, targetClient] = await Promise.all([connect(source.socket), connect(target.socket)]);
    const csv = tempPath('cities.csv');
    fs.writeFileSync(csv, CSV);
    await trellisOk(source.socket, ['put', csv, '--name', 'cli/cities', '--label', 'src=archive-test']);
  });

  after(async () => {
    await Promise.all([sourceClient?.close(), targetClient?.close()]);
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('exports a named DataFrame to a directory and to a .tar, printing the same topHash', async () => {
    const dir = tempPath('cities-archive');
    const toDir = await trellisOk(source.socket, ['export', 'cli/cities', dir]);
    assert.match(toDir.text, TOP_HASH_LINE);
    assert.ok(fs.existsSync(path.join(dir, 'manifest.jsonl')));
    assert.ok(fs.readdirSync(path.join(dir, 'blobs')).length > 0);

    const tar = tempPath('cities.tar');
    const toTar = await trellisOk(source.socket, ['export', 'cli/cities', tar]);
    assert.equal(toTar.text, toDir.text);
    assert.ok(fs.statSync(tar).isFile());
  });

  it('imports on a second daemon under --name; get there gives back the same rows and labels', async () => {
    const tar = tempPath('cities-import.tar');
    await sourceClient.exportArchive('cli/cities', tar);
    const imported = await trellisOk(target.socket, ['import', tar, '--name', 'cli/imported-cities']);
    assert.match(imported.text, ID_LINE);
    const id = imported.text.trim();
    assert.equal((await targetClient.getMeta('cli/imported-cities')).id, id);
    assert.deepEqual((await targetClient.getMeta(id)).labels, { src: 'archive-test' });

    const [original, copy] = await Promise.all([
      trellisOk(source.socket, ['get', 'cli/cities']),
      trellisOk(target.socket, ['get', 'cli/imported-cities']),
    ]);
    assert.equal(original.text, CSV);
    assert.equal(copy.text, original.text);
  });

  describe('an archive imported again', () => {
    const value = { twice: [1, 2.5, 'three'], nested: { ok: true } };
    let dir: string;

    before(async () => {
      dir = tempPath('twice-archive');
      await sourceClient.exportArchive(await sourceClient.put(value), dir);
    });

    it('gives the same id both times', async () => {
      const first = await trellisOk(target.socket, ['import', dir]);
      assert.match(first.text, ID_LINE);
      const second = await trellisOk(target.socket, ['import', dir]);
      assert.equal(second.text, first.text);
    });

    it('under a taken name is NameExists, and with --override moves the name to it', async () => {
      await targetClient.put('in the way', { name: 'cli/twice-name' });
      const taken = await runTrellis(['import', dir, '--name', 'cli/twice-name', '--socket', target.socket]);
      assert.equal(taken.code, 1);
      assert.match(taken.stderr, /^trellis: NameExists: .*cli\/twice-name.*\n$/);
      const moved = await trellisOk(target.socket, ['import', dir, '--name', 'cli/twice-name', '--override']);
      assert.match(moved.text, ID_LINE);
      assert.equal(moved.text.trim(), (await targetClient.importArchive(dir)).id);
      assert.deepEqual(await targetClient.get('cli/twice-name'), value);
    });
  });

  it('a missing archive exits 1 with one IOError line naming it', async () => {
    const missing = tempPath('no-such-archive.tar');
    const run = await runTrellis(['import', missing, '--socket', target.socket]);
    assert.equal(run.code, 1);
    assert.equal(run.text, '');
    assert.match(run.stderr, /^trellis: IOError: [^\n]+\n$/);
    assert.ok(run.stderr.includes(missing), run.stderr);
  });

  it('export to a non-empty directory exits 1 with the code and message the client throws', async () => {
    const dir = tempPath('occupied');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'not an archive');
    const thrown = await sourceClient.exportArchive('cli/cities', dir).then(
      () => assert.fail('exportArchive into a non-empty directory succeeded'),
      (error: unknown) => error,
    );
    assert.ok(isTrellisError(thrown), String(thrown));
    const run = await runTrellis(['export', 'cli/cities', dir, '--socket', source.socket]);
    assert.equal(run.code, 1);
    assert.equal(run.text, '');
    assert.equal(run.stderr, `trellis: ${thrown.code}: ${thrown.message}\n`);
    assert.equal(thrown.code, 'InvalidArgument');
    assert.deepEqual(fs.readdirSync(dir), ['keep.txt']);
  });
});
