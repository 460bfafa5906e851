/**
 * `trellis put` and `trellis get` in a child process against a real daemon: CSV and Arrow files
 * as DataFrames, any other file as a Blob, Values as JSON, to stdout and to -o files.
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tableFromArrays, tableFromIPC, tableToIPC, type Table } from 'apache-arrow';
import Papa from 'papaparse';
import { connect, type TrellisClient } from '../../src/connect';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';
import { runTrellis, trellisOk } from '../fixtures/trellis-cli';

const ID_LINE = /^o[0-9a-f]{16}\n$/;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function csvRows(text: string): string[][] {
  return Papa.parse<string[]>(text.trimEnd(), { header: false }).data;
}

function rowsOf(table: Table): unknown[] {
  return table.toArray().map((row) => ({ ...row.toJSON() }));
}

describe('trellis put and get', () => {
  let daemon: TestDaemon;
  let client: TrellisClient;

  before(async () => {
    daemon = await startTestDaemon();
    client = await connect(daemon.socket);
  });

  after(async () => {
    await client?.close();
    await daemon?.stop();
  });

  it('puts a CSV as a DataFrame (name, labels) and gets back the same rows, to stdout and to -o', async () => {
    const file = tempPath('people.csv');
    const csv = 'id,name,score\n1,ada,9.5\n2,"lovelace, ada",7.25\n3,,\n4,"say ""hi""",0.5\n';
    fs.writeFileSync(file, csv);
    const put = await trellisOk(daemon.socket, [
      'put',
      file,
      '--name',
      'cli/people',
      '--label',
      'src=test',
      '--label',
      'v=1',
    ]);
    assert.match(put.text, ID_LINE);
    const id = put.text.trim();
    const meta = await client.getMeta('cli/people');
    assert.equal(meta.id, id);
    assert.equal(meta.typename, 'trellis::DataFrame');
    assert.deepEqual(meta.labels, { src: 'test', v: '1' });

    const got = await trellisOk(daemon.socket, ['get', 'cli/people']);
    assert.deepEqual(csvRows(got.text), csvRows(csv));
    const out = tempPath('people-out.csv');
    await trellisOk(daemon.socket, ['get', id, '-o', out]);
    assert.deepEqual(csvRows(fs.readFileSync(out, 'utf8')), csvRows(csv));

    const json = JSON.parse((await trellisOk(daemon.socket, ['get', id, '--format', 'json'])).text);
    assert.deepEqual(json[0], { id: 1, name: 'ada', score: 9.5 });
    assert.equal(json.length, 4);
  });

  it('leaves no stream behind after a CSV put', async () => {
    const file = tempPath('small.tsv');
    fs.writeFileSync(file, 'a\tb\n1\t2\n');
    await trellisOk(daemon.socket, ['put', file]);
    const streams = (await client.listObjects({ pattern: '*Stream*' })).length;
    assert.equal(streams, 0);
    assert.equal((await client.status()).streams, 0);
  });

  it('round-trips a binary file through a Blob byte for byte (sha256), to stdout and to -o', async () => {
    const file = tempPath('random.bin');
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    fs.writeFileSync(file, bytes);
    const put = await trellisOk(daemon.socket, ['put', file, '--name', 'cli/random', '--label', 'kind=noise']);
    assert.match(put.text, ID_LINE);
    assert.equal(put.stderr, '');
    const meta = await client.getMeta('cli/random');
    assert.equal(meta.typename, 'trellis::Blob');
    assert.deepEqual(meta.labels, { kind: 'noise' });
    const got = await trellisOk(daemon.socket, ['get', 'cli/random']);
    assert.equal(sha256(got.stdout), sha256(bytes));
    const out = tempPath('random.out');
    await trellisOk(daemon.socket, ['get', put.text.trim(), '-o', out, '--format', 'raw']);
    assert.equal(sha256(fs.readFileSync(out)), sha256(bytes));
  });

  it('stores an empty file as an empty Blob', async () => {
    const file = tempPath('empty.dat');
    fs.writeFileSync(file, '');
    const id = (await trellisOk(daemon.socket, ['put', file])).text.trim();
    const got = await trellisOk(daemon.socket, ['get', id]);
    assert.equal(got.stdout.length, 0);
  });

  it('puts --blob a CSV as bytes, not as a table', async () => {
    const file = tempPath('as-bytes.csv');
    fs.writeFileSync(file, 'a,b\n1,2\n');
    const id = (await trellisOk(daemon.socket, ['put', file, '--blob'])).text.trim();
    assert.equal((await client.getMeta(id)).typename, 'trellis::Blob');
    assert.equal((await trellisOk(daemon.socket, ['get', id])).text, 'a,b\n1,2\n');
  });

  it('puts Arrow IPC files and streams as DataFrames and gets them back as Arrow', async () => {
    const table = tableFromArrays({
      x: Float64Array.from([1.5, 2.5, 3.5]),
      n: Int32Array.from([7, 8, 9]),
      s: ['a', 'b', 'c'],
    });
    for (const format of ['file', 'stream'] as const) {
      const file = tempPath(`table-${format}.arrow`);
      fs.writeFileSync(file, tableToIPC(table, format));
      const id = (await trellisOk(daemon.socket, ['put', file])).text.trim();
      assert.equal((await client.getMeta(id)).typename, 'trellis::DataFrame');
      const out = tempPath(`table-${format}-out.arrow`);
      await trellisOk(daemon.socket, ['get', id, '--format', 'arrow', '-o', out]);
      assert.deepEqual(rowsOf(tableFromIPC(fs.readFileSync(out))), rowsOf(table));
      const piped = await trellisOk(daemon.socket, ['get', id, '--format', 'arrow']);
      assert.deepEqual(rowsOf(tableFromIPC(piped.stdout)), rowsOf(table));
    }
    // The batches staged on the way in are gone: only the DataFrame and its buffers remain.
    assert.equal((await client.listObjects({ pattern: 'trellis::RecordBatch' })).length, 0);
  });

  it('a file that is not Arrow IPC is a ParseError naming it', async () => {
    const file = tempPath('bogus.arrow');
    fs.writeFileSync(file, 'not arrow at all, just text that goes on for a while\n'.repeat(4));
    const run = await runTrellis(['put', file, '--socket', daemon.socket]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^trellis: ParseError: cannot read \S*bogus\.arrow as Arrow IPC: [^\n]*\n$/);
  });

  it('gets a Value as JSON', async () => {
    const value = { name: 'ada', tags: ['x', 'y'], nested: { n: 3, ok: true, none: null } };
    const id = await client.put(value);
    assert.deepEqual(JSON.parse((await trellisOk(daemon.socket, ['get', id])).text), value);
  });

  it('refuses a format the type does not have, naming the ones it does', async () => {
    const id = await client.put({ a: 1 });
    const run = await runTrellis(['get', id, '--format', 'csv', '--socket', daemon.socket]);
    assert.equal(run.code, 1);
    assert.equal(
      run.stderr,
      `trellis: InvalidArgument: object ${id} is a trellis::Value: it can be written as json, not csv\n`,
    );
  });

  it('put --persist persists; --ttl also makes the object expire', async () => {
    const file = tempPath('persisted.bin');
    fs.writeFileSync(file, randomBytes(100));
    const kept = (await trellisOk(daemon.socket, ['put', file, '--persist'])).text.trim();
    const expiring = (await trellisOk(daemon.socket, ['put', file, '--ttl', '1'])).text.trim();
    let gone = false;
    const deadline = Date.now() + 20_000;
    while (!gone && Date.now() < deadline) {
      gone = !(await client.exists(expiring));
      if (!gone) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(gone, `object ${expiring} put with --ttl 1 still exists after 20 s`);
    assert.equal(await client.exists(kept), true);
  });
});
