import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataDir } from '../../../src/daemon/durable/data-dir';
import { startChild } from '../../fixtures/child';
import { tempPath } from '../../fixtures/setup';
import { expectRejects } from '../../fixtures/trellis-errors';

type HolderMessage = { opened: true } | { error: { code: string; message: string } };

describe('durable data dir', () => {
  it('creates the layout, private to the daemon user, with the holder pid in the lock file', async () => {
    const dir = path.join(tempPath('parent'), 'nested', 'data');
    const dataDir = await DataDir.open(dir);
    try {
      assert.deepEqual(fs.readdirSync(dir).sort(), ['blobs', 'catalog', 'lock']);
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      assert.equal(fs.readFileSync(path.join(dir, 'lock'), 'utf8'), `${process.pid}\n`);
    } finally {
      await dataDir.close();
    }
  });

  it('one daemon per dir: a second open is a Conflict naming the dir and the holder', async () => {
    const dir = tempPath('data');
    const holder = startChild('durable-holder.ts', [dir]);
    assert.deepEqual(await holder.next<HolderMessage>(), { opened: true });
    await expectRejects(
      DataDir.open(dir),
      'Conflict',
      `data dir ${dir} is in use by another trellis daemon (pid ${holder.pid}); one daemon per data dir`,
    );
    holder.send('close');
    assert.equal(await holder.exited, 0);
    // The same process cannot take it twice either (two stores in one daemon would be the same bug).
    const first = await DataDir.open(dir);
    await expectRejects(DataDir.open(dir), 'Conflict', new RegExp(`pid ${process.pid}\\)`));
    await first.close();
    await (await DataDir.open(dir)).close();
  });

  it('the lock of a killed daemon is taken over, whatever its lock file says', async () => {
    const dir = tempPath('data');
    const holder = startChild('durable-holder.ts', [dir]);
    assert.deepEqual(await holder.next<HolderMessage>(), { opened: true });
    holder.kill('SIGKILL');
    await holder.exited;
    assert.equal(
      fs.readFileSync(path.join(dir, 'lock'), 'utf8'),
      `${holder.pid}\n`,
      'the dead daemon left its pid behind',
    );
    const taken = await DataDir.open(dir);
    assert.equal(fs.readFileSync(path.join(dir, 'lock'), 'utf8'), `${process.pid}\n`);
    // And a child refused while we hold it reports the same Conflict.
    const second = startChild('durable-holder.ts', [dir]);
    const refused = await second.next<HolderMessage>();
    assert.ok('error' in refused && refused.error.code === 'Conflict', JSON.stringify(refused));
    assert.equal(await second.exited, 0);
    await taken.close();
  });

  it('a data dir that cannot be created is an IOError naming it', async () => {
    const file = tempPath('a-file');
    fs.writeFileSync(file, '');
    const dir = path.join(file, 'data');
    await expectRejects(DataDir.open(dir), 'IOError', new RegExp(`^cannot create directory ${dir}: ENOTDIR`));
  });
});
