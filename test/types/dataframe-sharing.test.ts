/**
 * trellis::DataFrame and trellis::RecordBatch through a real daemon: a large Table put by one
 * process and read by name by another, zero-copy; puts of RecordBatches and empty tables;
 * metadata; objects that do not resolve; and a failed put that gives its memory back.
 */
import * as assert from 'node:assert/strict';
import { RecordBatch, Table, tableFromArrays } from 'apache-arrow';
import { connect } from '../../src/index';
import { allBuffers, assertSameStructure, assertValuesEqual } from '../fixtures/arrow-compare';
import { generatedTable } from '../fixtures/arrow-tables';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { onCleanup } from '../fixtures/setup';
import { settledStatus } from '../fixtures/status';

interface VerifyReport {
  error?: string;
  typename: string;
  numRows: number;
  batches: number;
  dictionaries: number;
  buffers: number;
  notShared: number;
  getRequests: number;
}

describe('DataFrame and RecordBatch sharing', () => {
  let daemon: TestDaemon;

  before(async () => {
    daemon = await startTestDaemon(['--size', '512MiB']);
  });

  after(async () => {
    await daemon.stop();
  });

  async function openClient(): Promise<Awaited<ReturnType<typeof connect>>> {
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    return client;
  }

  /** Process A puts and names generatedTable(rows, seed, batches) and exits; process B checks it. */
  async function shareBetweenProcesses(name: string, rows: number, batches: number): Promise<VerifyReport> {
    const client = await openClient();
    const args = [daemon.socket, name, String(rows), '42', String(batches)];
    const writer = startChild('dataframe-put.ts', args);
    const put = await writer.next<{ id: string }>(60_000);
    assert.equal(await writer.exited, 0, writer.stderr());
    assert.equal(await client.getName(name), put.id, 'the name outlives the process that made it');

    const reader = startChild('dataframe-verify.ts', args);
    const report = await reader.next<VerifyReport>(90_000);
    assert.equal(report.error, undefined, report.error);
    assert.equal(await reader.exited, 0, reader.stderr());
    assert.equal(report.typename, 'Table');
    assert.equal(report.numRows, rows);
    assert.equal(report.batches, batches);
    assert.equal(report.dictionaries, 1, 'every batch reads the one stored dictionary');
    assert.ok(
      report.buffers >= 8 * batches,
      `expected a buffer or more for each of 8 columns in ${batches} batches, found ${report.buffers}`,
    );
    assert.equal(report.notShared, 0, 'every buffer of the table is a view of shared memory');
    // A get costs per object, never per row or batch: a repeated get by name is one request.
    assert.equal(
      report.getRequests,
      1,
      `a repeated get of ${rows} rows in ${batches} batches made ${report.getRequests} requests`,
    );
    await client.delete(put.id, { force: true });
    return report;
  }

  it('a 5-million-row Table put and named by one process is read by name in another: equal, in shared memory, one request a get', async function () {
    this.timeout(120_000);
    await shareBetweenProcesses('large-frame', 5_000_000, 1);
  });

  it('a Table of several batches sharing a dictionary is read in another process with the dictionary stored once', async function () {
    this.timeout(60_000);
    await shareBetweenProcesses('batched-frame', 200_000, 4);
  });

  it('put and get of a RecordBatch, of empty Tables and of a sliced Table, in one process', async () => {
    const client = await openClient();
    const table = generatedTable(10_000, 3, 2);
    const batch = new RecordBatch(table.schema, table.batches[1].data, new Map([['part', 'two']]));
    const batchId = await client.put(batch);
    const gotBatch = await client.get(batchId);
    assert.ok(gotBatch instanceof RecordBatch);
    assertSameStructure(gotBatch, batch);
    assertValuesEqual(gotBatch, batch);
    assert.ok(allBuffers(gotBatch).every((buffer) => client.isSharedMemory(buffer)));

    for (const empty of [new Table(), new Table(table.schema, []), table.slice(0, 0)]) {
      const got = await client.get(await client.put(empty));
      assertValuesEqual(got, empty);
    }

    const slice = table.slice(4_999, 5_123);
    const gotSlice = await client.get(await client.put(slice));
    assert.ok(gotSlice instanceof Table);
    assertValuesEqual(gotSlice, slice);
  });

  it('records its typename, row and column counts, labels and one blob member per buffer', async () => {
    const client = await openClient();
    const table = tableFromArrays({ a: Int32Array.from([1, 2, 3]), b: Float64Array.from([0.5, 1.5, 2.5]) });
    const id = await client.put(table, { labels: { owner: 'tests' } });
    const meta = await client.getMeta(id);
    assert.equal(meta.typename, 'trellis::DataFrame');
    assert.deepEqual(meta.labels, { owner: 'tests' });
    assert.equal(meta.fields.numRows, 3);
    assert.equal(meta.fields.numColumns, 2);
    const members = Object.values(meta.members);
    assert.ok(members.length > 0 && members.every((member) => member.typename === 'trellis::Blob'));

    const batchMeta = await client.getMeta(await client.put(table.batches[0]));
    assert.equal(batchMeta.typename, 'trellis::RecordBatch');
  });

  it('a DataFrame object without an arrow layout, or whose layout does not fit, fails to resolve (TypeMismatch)', async () => {
    const client = await openClient();
    const bare = await client.createMetadata({ typename: 'trellis::DataFrame' });
    await assert.rejects(client.get(bare), {
      code: 'TypeMismatch',
      message: `object ${bare} (trellis::DataFrame) has no arrow layout field`,
    });

    const table = tableFromArrays({ a: Int32Array.from([1, 2, 3]) });
    const meta = await client.getMeta(await client.put(table));
    const layout = meta.fields.layout as { kind: string; version: number };
    const asBatch = await client.createMetadata({ typename: 'trellis::RecordBatch', layout });
    await assert.rejects(client.get(asBatch), {
      code: 'TypeMismatch',
      message: `object ${asBatch} is a trellis::RecordBatch but its arrow layout holds a table`,
    });
    const members = Object.fromEntries(Object.entries(meta.members).map(([key, member]) => [key, member.id]));
    const future = await client.createMetadata({
      typename: 'trellis::DataFrame',
      members,
      layout: { ...layout, version: 2 },
    });
    await assert.rejects(client.get(future), {
      code: 'TypeMismatch',
      message: `object ${future} (trellis::DataFrame): arrow layout version 2 is not one this trellis reads (1)`,
    });
  });

  it('a named put that fails (NameExists) gives back all of its blobs', async () => {
    const client = await openClient();
    const baseline = (await settledStatus(client, () => true)).memoryUsage;
    await client.put(Buffer.alloc(16), { name: 'taken-frame' });
    const afterName = (await client.status()).memoryUsage;
    await assert.rejects(client.put(generatedTable(50_000, 9), { name: 'taken-frame' }), { code: 'NameExists' });
    const status = await settledStatus(client, ({ memoryUsage }) => memoryUsage === afterName);
    assert.equal(
      status.memoryUsage,
      afterName,
      `memory in use went from ${baseline} to ${afterName} and stayed at ${status.memoryUsage}`,
    );
  });
});
