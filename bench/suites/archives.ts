/**
 * archives: export of a DataFrame (1 GiB by default; TRELLIS_BENCH_ARCHIVE_MIB to change) against
 * what it cannot avoid, sha256 + write of the same bytes with fs, measured in the same run; then
 * import into a second daemon against read + sha256 of the same files; then a second import of
 * the same archive (found by topHash: nothing read or stored) against the first. Last, in a
 * one-daemon cluster, what `putName` with `expectVersion` costs: socket requests (the daemon's
 * own count) and etcd calls and transactions (etcd's own counters) per call.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { connect } from '../../src/index';
import { makeBenchTable, tableBytes, valueBuffers } from '../lib/arrow-table';
import { startBenchDaemon } from '../lib/daemon';
import { startBenchEtcd } from '../lib/etcd';
import { summarize } from '../lib/stats';
import type { Suite, SuiteContext, SuiteReport } from '../lib/suite';

const MiB = 1024 * 1024;
const CHUNK = 4 * MiB;
const TABLE_BYTES = Number(process.env.TRELLIS_BENCH_ARCHIVE_MIB ?? 1024) * MiB;

async function timed<T>(work: () => Promise<T>): Promise<{ ns: number; result: T }> {
  const start = process.hrtime.bigint();
  const result = await work();
  return { ns: Number(process.hrtime.bigint() - start), result };
}

/** The baseline: each buffer hashed and written to its own file, chunk by chunk, as export must. */
async function hashAndWrite(dir: string, buffers: Uint8Array[]): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  for (const [i, buffer] of buffers.entries()) {
    const file = await fs.open(path.join(dir, String(i)), 'w');
    const hash = createHash('sha256');
    for (let offset = 0; offset < buffer.length; offset += CHUNK) {
      const chunk = buffer.subarray(offset, offset + CHUNK);
      const written = file.write(chunk, 0, chunk.length, offset);
      hash.update(chunk);
      await written;
    }
    hash.digest();
    await file.close();
  }
}

/** The baseline for import: every file read into memory allocated up front and hashed. */
async function readAndHash(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const file = await fs.open(path.join(dir, name), 'r');
    const { size } = await file.stat();
    const target = Buffer.allocUnsafe(size);
    const hash = createHash('sha256');
    for (let offset = 0; offset < size; offset += CHUNK) {
      const length = Math.min(CHUNK, size - offset);
      await file.read(target, offset, length, offset);
      hash.update(target.subarray(offset, offset + length));
    }
    hash.digest();
    await file.close();
  }
}

/** putName calls with expectVersion whose cost is counted. */
const VERSIONED_PUTS = 50;

interface VersionedPutCost {
  requests: number;
  etcdCalls: number;
  etcdTxns: number;
  ns: number[];
}

/** `VERSIONED_PUTS` putName calls, each expecting the version the one before made, on a cluster daemon. */
async function versionedPutCost({ scope, log }: SuiteContext): Promise<VersionedPutCost> {
  const etcd = await startBenchEtcd(scope);
  const daemon = await startBenchDaemon(scope, {
    size: '64MiB',
    args: ['--etcd', etcd.endpoint, '--etcd-prefix', 'bench', '--lease-ttl', '10'],
  });
  const client = await connect(daemon.socket);
  scope.defer(() => client.close());
  log(`putName with expectVersion x${VERSIONED_PUTS} (cluster: etcd at ${etcd.endpoint})`);
  const ids: string[] = [];
  for (let i = 0; i <= VERSIONED_PUTS; i++) ids.push(await client.put({ version: i }, { persist: true }));
  await client.putName(ids[0], 'bench/versioned');
  const before = {
    requests: (await client.status()).requests,
    calls: await etcd.unaryCalls(),
    txns: await etcd.unaryCalls('Txn'),
  };
  const ns: number[] = [];
  for (let i = 1; i <= VERSIONED_PUTS; i++) {
    const start = process.hrtime.bigint();
    const version = await client.putName(ids[i], 'bench/versioned', { override: true, expectVersion: i });
    ns.push(Number(process.hrtime.bigint() - start));
    if (version !== i + 1) throw new Error(`putName gave version ${version}, expected ${i + 1}`);
  }
  const calls = (await etcd.unaryCalls()) - before.calls;
  const txns = (await etcd.unaryCalls('Txn')) - before.txns;
  // Less the status call that reads the count.
  const requests = (await client.status()).requests - before.requests - 1;
  return {
    requests: requests / VERSIONED_PUTS,
    etcdCalls: calls / VERSIONED_PUTS,
    etcdTxns: txns / VERSIONED_PUTS,
    ns,
  };
}

async function run(context: SuiteContext): Promise<SuiteReport> {
  const report = await runArchives(context);
  const cost = await versionedPutCost(context);
  report.rows.push({
    section: 'versions',
    operation: `putName with expectVersion (cluster, warm, x${VERSIONED_PUTS})`,
    stats: summarize(cost.ns),
    versus: `${cost.requests.toFixed(2)} socket requests, ${cost.etcdCalls.toFixed(2)} etcd calls, ${cost.etcdTxns.toFixed(2)} etcd Txn per call`,
  });
  report.targets.push({
    target: 'putName with expectVersion in a cluster: 1 socket request per call',
    measured: cost.requests.toFixed(2),
    met: cost.requests === 1,
  });
  report.targets.push({
    target: 'putName with expectVersion in a cluster: 1 etcd transaction per call',
    measured: `${cost.etcdTxns.toFixed(2)} Txn (${cost.etcdCalls.toFixed(2)} etcd calls in all)`,
    met: cost.etcdTxns === 1 && cost.etcdCalls === 1,
  });
  return report;
}

async function runArchives({ scope, log }: SuiteContext): Promise<SuiteReport> {
  const daemonSize = `${Math.ceil((TABLE_BYTES * 1.25) / MiB)}MiB`;
  const [source, target] = await Promise.all([
    startBenchDaemon(scope, { size: daemonSize }),
    startBenchDaemon(scope, { size: daemonSize }),
  ]);
  const [a, b] = await Promise.all([connect(source.socket), connect(target.socket)]);
  scope.defer(() => a.close());
  scope.defer(() => b.close());
  log(`building a ${TABLE_BYTES / MiB} MiB table`);
  const table = makeBenchTable(TABLE_BYTES);
  const bytes = tableBytes(table);
  const id = await a.put(table);
  const stored = valueBuffers(await a.get(id));

  log('baseline: sha256 + write of the same buffers');
  const baselineDir = scope.path('baseline');
  const baseline = await timed(() => hashAndWrite(baselineDir, stored));
  log('exportArchive');
  const archive = scope.path('archive');
  const exported = await timed(() => a.exportArchive(id, archive));
  await fs.rm(baselineDir, { recursive: true, force: true });

  log('baseline: read + sha256 of the archive blobs');
  const readBaseline = await timed(() => readAndHash(path.join(archive, 'blobs')));
  log('importArchive (first)');
  const first = await timed(() => b.importArchive(archive));
  log('importArchive (second: already there)');
  const second = await timed(() => b.importArchive(archive));
  await fs.rm(archive, { recursive: true, force: true });

  const gb = (ns: number) => `${(bytes / ns).toFixed(2)} GB/s`;
  const row = (section: string, operation: string, ns: number, versus?: string) => ({
    section,
    operation,
    bytes,
    stats: summarize([ns]),
    versus,
  });
  return {
    rows: [
      row('baseline', 'sha256 + fs write of the table buffers', baseline.ns, gb(baseline.ns)),
      row(
        'export',
        'exportArchive (directory)',
        exported.ns,
        `${gb(exported.ns)}, ${(exported.ns / baseline.ns).toFixed(2)}x the baseline's time`,
      ),
      row('baseline', 'fs read + sha256 of the archive blobs', readBaseline.ns, gb(readBaseline.ns)),
      row(
        'import',
        'importArchive, first',
        first.ns,
        `${gb(first.ns)}, ${(first.ns / readBaseline.ns).toFixed(2)}x the baseline's time`,
      ),
      row(
        'import',
        'importArchive, second (same topHash)',
        second.ns,
        `${((second.ns / first.ns) * 100).toFixed(3)}% of the first`,
      ),
    ],
    targets: [
      {
        target: 'export at least 0.5x the speed of sha256 + fs write',
        measured: `${(baseline.ns / exported.ns).toFixed(2)}x`,
        met: baseline.ns / exported.ns >= 0.5,
      },
      {
        target: 'import at least 0.5x the speed of fs read + sha256',
        measured: `${(readBaseline.ns / first.ns).toFixed(2)}x`,
        met: readBaseline.ns / first.ns >= 0.5,
      },
      {
        target: 'second import under 5% of the first',
        measured: `${((second.ns / first.ns) * 100).toFixed(3)}%`,
        met: second.ns / first.ns < 0.05,
      },
    ],
    notes: [
      `one run each, a ${(bytes / MiB).toFixed(0)} MiB table of ${stored.length} buffers; files in the bench scope folder (${path.dirname(archive)}).`,
      `first import existed=${first.result.existed}, second existed=${second.result.existed}; topHash ${exported.result.topHash}.`,
    ],
  };
}

export const suite: Suite = { name: 'archives', title: 'archives: export and import of a large DataFrame', run };
