/**
 * A single-member etcd for a suite, on free loopback ports with its data dir on /dev/shm (fsync
 * costs nothing there, so the numbers are trellis's, not the disk's), stopped when the scope
 * closes. `unaryCalls()` reads etcd's own counters: every unary gRPC call it answered (Range,
 * Put, Txn, DeleteRange, lease calls), which is the number of round trips clients made to it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Scope } from './scope';
import { freePort, stopProcess } from '../../test/fixtures/processes';

const ETCD_BINARIES = [process.env.ETCD_BIN, '/usr/bin/etcd', '/usr/local/bin/etcd'];
const READY_TIMEOUT_MS = 15_000;

export interface BenchEtcd {
  readonly endpoint: string;
  /** Unary gRPC calls answered so far (round trips), from etcd's /metrics; `method`: only those (Txn, Range, ...). */
  unaryCalls(method?: string): Promise<number>;
}

function httpGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: 2_000 }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${urlPath} timed out`)));
    request.on('error', reject);
  });
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
    const health = await httpGet(clientPort, '/health').catch(() => undefined);
    if (health?.status === 200 && /"health":\s*"true"/.test(health.body)) break;
    if (Date.now() > deadline) throw new Error(`etcd was not healthy within ${READY_TIMEOUT_MS} ms:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    endpoint: client,
    async unaryCalls(method?: string) {
      const { body } = await httpGet(clientPort, '/metrics');
      let total = 0;
      for (const line of body.split('\n')) {
        if (!line.startsWith('grpc_server_handled_total{') || !line.includes('grpc_type="unary"')) continue;
        if (!/grpc_service="etcdserverpb\.(KV|Lease)"/.test(line)) continue;
        if (method !== undefined && !line.includes(`grpc_method="${method}"`)) continue;
        total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return total;
    },
  };
}
