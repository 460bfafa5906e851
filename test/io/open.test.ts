import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { connect, type TrellisClient } from '../../src/index';
import { open } from '../../src/io';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';
import { settledStatus } from '../fixtures/status';

describe('open(): files as DataframeStreams', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  before(async () => {
    daemon = await startTestDaemon(['--size', '256MiB', '--stream-buffer', '4MiB']);
    client = await connect(daemon.socket);
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  function edgeFile(rows: number): string {
    const file = tempPath('edges.e');
    const lines: string[] = [];
    for (let i = 0; i < rows; i++) lines.push(`${i} ${(i * 7919) % rows} ${(i % 100) / 4}`);
    fs.writeFileSync(file, lines.join('\n') + '\n');
    return file;
  }

  it('another process reads the stream by id while it is being written', async () => {
    const rows = 300_000;
    const baseline = await client.status();
    const stream = await open(`file://${edgeFile(rows)}`, { client, chunkBytes: 256 * 1024 });
    assert.equal(stream.typename, 'trellis::DataframeStream');
    const reader = startChild('dataframe-stream-reader.ts', [daemon.socket, stream.id]);
    const report = await reader.next<{
      rows: number;
      columns: number;
      sum: string;
      shared: boolean;
      message?: string;
    }>();
    assert.equal(report.message, undefined);
    assert.equal(report.rows, rows);
    assert.equal(report.columns, 3);
    assert.equal(report.sum, String((rows * (rows - 1)) / 2));
    assert.equal(report.shared, true, 'the reader sees views of shared memory');
    await stream.close();
    const after = await settledStatus(client, (s) => s.memoryUsage === baseline.memoryUsage && s.clients === 1);
    assert.equal(after.memoryUsage, baseline.memoryUsage, 'chunks were freed once read');
  });

  it('readTable gathers the whole file into one zero-copy table', async () => {
    const file = tempPath('people.csv');
    fs.writeFileSync(file, 'name,age,member,joined\r\n"Smith, Ann",41,true,2020-01-02\r\nBob,,false,2021-12-31\r\n');
    const stream = await open(`file://${file}`, { client });
    const table = await stream.readTable();
    assert.equal(table.numRows, 2);
    assert.deepEqual(
      table.schema.fields.map((f: { name: string }) => f.name),
      ['name', 'age', 'member', 'joined'],
    );
    assert.equal(table.getChild('name')!.get(0), 'Smith, Ann');
    assert.equal(table.getChild('age')!.get(1), null);
    assert.equal(table.getChild('member')!.get(0), true);
    assert.ok(client.isSharedMemory(table.getChild('age')!.data[0].values));
  });

  it('a malformed file is a ParseError naming file, line and column, and the store keeps nothing', async () => {
    const baseline = await client.status();
    const file = tempPath('bad.csv');
    const good = Array.from({ length: 5000 }, (_, i) => `${i},${i * 2}`).join('\n');
    fs.writeFileSync(file, `a,b\n${good}\n5000,oops\n`);
    const stream = await open(`file://${file}`, { client, columnTypes: { a: 'int64', b: 'int64' } });
    await assert.rejects(stream.readTable(), (error: Error & { code: string }) => {
      assert.equal(error.code, 'ParseError');
      assert.ok(error.message.includes(file), error.message);
      assert.match(error.message, /line 5002/);
      assert.match(error.message, /column 2/);
      return true;
    });
    const after = await settledStatus(client, (s) => s.memoryUsage === baseline.memoryUsage);
    assert.equal(after.objects, baseline.objects);
    assert.equal(after.streams, baseline.streams);
  });

  it('an unreadable file is an IOError with the system error as cause; an unknown scheme is InvalidArgument', async () => {
    const missing = tempPath('missing.csv');
    await assert.rejects(
      open(`file://${missing}`, { client }),
      (error: Error & { code: string; cause?: { code?: string } }) => {
        assert.equal(error.code, 'IOError');
        assert.ok(error.message.includes(missing));
        assert.equal(error.cause?.code, 'ENOENT');
        return true;
      },
    );
    await assert.rejects(open('ftp://example.invalid/x.csv', { client }), {
      code: 'InvalidArgument',
      message: /no driver for URL scheme "ftp:"/,
    });
    await assert.rejects(open('not a url', { client }), { code: 'InvalidArgument', message: /cannot parse URL/ });
  });

  it("mode 'w' writes a table back to CSV that reads the same", async () => {
    const source = await (await open(`file://${edgeFile(1000)}`, { client })).readTable();
    const out = tempPath('out.csv');
    await open(`file://${out}`, { mode: 'w', source });
    const again = await (await open(`file://${out}`, { client })).readTable();
    assert.equal(again.numRows, 1000);
    for (const column of [0, 1, 2]) {
      assert.deepEqual([...again.getChildAt(column)!].map(Number), [...source.getChildAt(column)!].map(Number));
    }
  });
});
