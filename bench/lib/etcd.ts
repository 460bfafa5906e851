/**
 * A single-member etcd for a suite, on free loopback ports with its data dir on /dev/shm (fsync
 * costs nothing there, so the numbers are trellis's, not the disk's), stopped when the scope
 * closes. `unaryCalls()` reads etcd's own counters: every unary gRPC call it answered (Range,
 * Put, Txn, DeleteRange, lease calls), which is the number of round trips clients made to it;
 * `counters()` reads what it stores and what its watches sent.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { httpGet, scrape, type Scrape } from './prometheus';
import type { Scope } from './scope';
import { freePort, stopProcess } from '../../test/fixtures/processes';

const ETCD_BINARIES = [process.env.ETCD_BIN, '/usr/bin/etcd', '/usr/local/bin/etcd'];
const READY_TIMEOUT_MS = 15_000;

export interface BenchEtcd {
  readonly endpoint: string;
  /** Unary gRPC calls answered so far (round trips), from etcd's /metrics; `method`: only those (Txn, Range, ...). */
  unaryCalls(method?: string): Promise<number>;
  /** Keys, database size, writes and watch events so far, from etcd's /metrics. */
  counters(): Promise<EtcdCounters>;
}

export interface EtcdCounters {
  /** Unary gRPC calls answered (KV and Lease services): client round trips. */
  unaryCalls: number;
  /** Keys that exist now (etcd_debugging_mvcc_keys_total). */
  keys: number;
  /** Size of the database file (etcd_mvcc_db_total_size_in_bytes): what the quota counts. */
  dbBytes: number;
  /** Bytes of the database in use (etcd_mvcc_db_total_size_in_use_in_bytes). */
  dbBytesInUse: number;
  /** Key writes (puts, also inside transactions) and the bytes of key + value they wrote. */
  puts: number;
  putBytes: number;
  /** Events its watches delivered to watchers (etcd_debugging_mvcc_events_total). */
  watchEvents: number;
  /** Watchers open now. */
  watchers: number;
}

function unaryCallsOf(metrics: Scrape, method?: string): number {
  return metrics.sum(
    'grpc_server_handled_total',
    (labels) =>
      labels.includes('grpc_type="unary"') &&
      /grpc_service="etcdserverpb\.(KV|Lease)"/.test(labels) &&
      (method === undefined || labels.includes(`grpc_method="${method}"`)),
  );
}

export async function startBenchEtcd(scope: Scope): Promise<BenchEtcd> {
  const binary = ETCD_BINARIES.find((candidate) => candidate && fs.existsSync(candidate));
  if (!binary)
    throw new Error("etcd not found: install Debian's etcd-server (apt-get install etcd-server) or set ETCD_BIN");
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const dataDir = fs.mkdtempSync(
    path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'trellis-bench-etcd-'),
  );
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    binary,
    [
      '--name',
      'bench',
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `bench=${peer}`,
      '--logger',
      'zap',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  scope.defer(async () => {
    await stopProcess(child, exited);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`etcd exited before it was ready:\n${output}`);
    const health = await httpGet(`127.0.0.1:${clientPort}`, '/health').catch(() => undefined);
    if (health?.status === 200 && /"health":\s*"true"/.test(health.body)) break;
    if (Date.now() > deadline) throw new Error(`etcd was not healthy within ${READY_TIMEOUT_MS} ms:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    endpoint: client,
    async unaryCalls(method?: string) {
      return unaryCallsOf(await scrape(`127.0.0.1:${clientPort}`), method);
    },
    async counters() {
      const metrics = await scrape(`127.0.0.1:${clientPort}`);
      return {
        unaryCalls: unaryCallsOf(metrics),
        keys: metrics.sum('etcd_debugging_mvcc_keys_total'),
        dbBytes: metrics.sum('etcd_mvcc_db_total_size_in_bytes'),
        dbBytesInUse: metrics.sum('etcd_mvcc_db_total_size_in_use_in_bytes'),
        puts: metrics.sum('etcd_debugging_mvcc_put_total'),
        putBytes: metrics.sum('etcd_debugging_mvcc_total_put_size_in_bytes'),
        watchEvents: metrics.sum('etcd_debugging_mvcc_events_total'),
        watchers: metrics.sum('etcd_debugging_mvcc_watcher_total'),
      };
    },
  };
}
