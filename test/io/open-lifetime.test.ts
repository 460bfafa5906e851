/**
 * The client open() connects for itself goes once the stream is read (to the end, by a break, or
 * to an error), so a script that never calls close() still exits; readTable keeps its memory
 * held (the table is a view of it) without keeping the process running. A client the caller
 * passed in is left open.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { RecordBatch, Table } from 'apache-arrow';
import { connect, type DaemonStatus, type TrellisClient } from '../../src/index';
import { open } from '../../src/io';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { runToExit } from '../fixtures/exit';
import { tempPath } from '../fixtures/setup';
import { settledStatus } from '../fixtures/status';
import { expectRejects } from '../fixtures/trellis-errors';

describe('open(): what the stream connected for itself goes when it is read', function () {
  let daemon: TestDaemon;
  let client: TrellisClient;
  let file: string;
  const rows = 200_000;

  before(async () => {
    // A small stream buffer: a reader that breaks early leaves the parser waiting for room.
    daemon = await startTestDaemon(['--size', '256MiB', '--stream-buffer', '1MiB']);
    client = await connect(daemon.socket);
    file = tempPath('edges.e');
    const lines: string[] = [];
    for (let i = 0; i < rows; i++) lines.push(`${i} ${(i * 7919) % rows} ${(i % 100) / 4}`);
    fs.writeFileSync(file, lines.join('\n') + '\n');
  });
  after(async () => {
    await client.close();
    await daemon.stop();
  });

  const expectedSum = String((rows * (rows - 1)) / 2);

  it('a script that does `await (await open(url)).readTable()` and never closes exits by itself with 0', async () => {
    const env = { TRELLIS_SOCKET: daemon.socket };
    const output = await runToExit('open-without-close.ts', ['readTable', `file://${file}`], env);
    assert.deepEqual(output, { rows, sum: expectedSum });
  });

  it('a script that iterates the stream to its end, or breaks out of the loop, exits by itself with 0', async () => {
    const env = { TRELLIS_SOCKET: daemon.socket };
    const all = await runToExit('open-without-close.ts', ['iterate', `file://${file}`], env);
    assert.equal(all.rows, rows);
    assert.ok((all.batches as number) > 4, 'many batches');
    const early = await runToExit('open-without-close.ts', ['break', `file://${file}`], env);
    assert.equal(early.batches, 1);
    assert.ok((early.rows as number) < rows);
    const status = await settledStatus(client, (s) => s.clients === 1 && s.streams === 0);
    assert.equal(status.clients, 1, 'only this test client is left');
  });

  it("readTable keeps open()'s own client holding the table's memory until close(); iteration closes it", async () => {
    const baseline = await client.status();
    const stream = await open(`file://${file}`, { socket: daemon.socket });
    const table: Table = await stream.readTable();
    const held = (await client.status()).clients;
    // Fill memory the daemon would reuse had the table's chunks been let go of.
    const fillers = await client.putMany(Array.from({ length: 48 }, () => Buffer.alloc(256 * 1024, 0xee)));
    assert.equal(table.numRows, rows);
    assert.equal(String(sumColumn(table)), expectedSum, 'the table still reads what was parsed');
    await client.delete(fillers);
    assert.equal(held, baseline.clients + 1, "open()'s client still holds the table");
    await stream.close();
    const released = (s: DaemonStatus) => s.clients === baseline.clients && s.memoryUsage === baseline.memoryUsage;
    let after = await settledStatus(client, released);
    assert.equal(after.clients, baseline.clients);
    assert.equal(after.memoryUsage, baseline.memoryUsage, "the table's memory is released by close()");

    const iterated = await open(`file://${file}`, { socket: daemon.socket, chunkBytes: 64 * 1024 });
    for await (const batch of iterated as AsyncIterable<RecordBatch>) void batch;
    after = await settledStatus(client, (s) => s.clients === baseline.clients);
    assert.equal(after.clients, baseline.clients, 'closed at the end of the loop');
    const again = new RegExp(`stream ${iterated.id} was already read here .*open the file again`);
    await expectRejects(iterated.readTable(), 'StreamOpened', again);
  });

  it('a failed read closes the client open() made, too', async () => {
    const baseline = await client.status();
    const bad = tempPath('bad.csv');
    fs.writeFileSync(bad, 'a,b\n1,2\n3,oops\n');
    const stream = await open(`file://${bad}`, { socket: daemon.socket, columnTypes: { a: 'int64', b: 'int64' } });
    await expectRejects(stream.readTable(), 'ParseError', /line 3/);
    const after = await settledStatus(client, (s) => s.clients === baseline.clients && s.streams === baseline.streams);
    assert.equal(after.clients, baseline.clients);
    assert.equal(after.streams, baseline.streams);
  });

  it('a client passed in is never closed: after readTable, a loop, a break or an error it still works', async () => {
    const table = await (await open(`file://${file}`, { client })).readTable();
    assert.equal(table.numRows, rows);
    for await (const batch of await open(`file://${file}`, { client, chunkBytes: 64 * 1024 })) void batch;
    const early = await open(`file://${file}`, { client, chunkBytes: 64 * 1024 });
    for await (const batch of early) {
      void batch;
      break;
    }
    const bad = tempPath('bad.csv');
    fs.writeFileSync(bad, 'a\n1\nx\n');
    const failing = await open(`file://${bad}`, { client, columnTypes: { a: 'int64' } });
    await expectRejects(failing.readTable(), 'ParseError', /line 3/);
    assert.equal(await client.get(await client.put({ still: 'open' })).then((v: { still: string }) => v.still), 'open');
  });
});

function sumColumn(table: Table): bigint {
  let sum = 0n;
  for (const value of table.getChildAt(0)!) sum += BigInt(value as bigint);
  return sum;
}
