/**
 * A private Redis for baselines: Debian's redis-server on a free loopback port, with no
 * persistence (no RDB, no AOF), its files in the scope's folder, stopped with SHUTDOWN NOSAVE
 * semantics (SIGTERM with nothing to save), then SIGKILL. When the binary is missing and we are
 * root, it is installed with apt-get first, since Debian's package is the one users have.
 *
 * Redis refuses values over proto-max-bulk-len (512 MB by default) and requests over
 * client-query-buffer-limit (1 GB); both are raised at startup when the server accepts it, and
 * the limit in force is read back so a suite can say what it could store.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { onCpu } from './cpu';
import type { Scope } from './scope';
import { freePort, stopProcess } from '../../test/fixtures/processes';

const READY_TIMEOUT_MS = 10_000;
const OUTPUT_TAIL_CHARS = 4_000;

export interface BenchRedis {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  /** redis-server's version, such as '7.0.15'. */
  readonly version: string;
  /** proto-max-bulk-len in force: the largest value the server stores. */
  readonly maxValueBytes: number;
  /** Its UNIX socket, when asked for one (`unixSocket`). */
  readonly socket?: string;
  /** How the server was started, for the notes. */
  readonly description: string;
  stop(): Promise<void>;
}

export interface BenchRedisOptions {
  /** Pins the server to this CPU (see cpu.ts). */
  cpu?: number;
  /** proto-max-bulk-len to ask for; the server may refuse it (then its default stays). */
  maxValueBytes?: number;
  /** Also listen on a UNIX socket in the scope's folder (the baseline for trellis's own socket). */
  unixSocket?: boolean;
  log?: (message: string) => void;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** The redis-server binary, installing Debian's package when it is missing and we are root. */
export function ensureRedisServer(log: (message: string) => void = () => {}): string {
  const found = findOnPath('redis-server');
  if (found) return found;
  if (process.getuid?.() !== 0 || !findOnPath('apt-get')) {
    throw new Error(
      'redis-server not found on PATH; install it (Debian: apt-get install -y redis-server) to run the Redis baselines',
    );
  }
  log("redis-server not found: installing Debian's redis-server with apt-get");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'ignore', env });
  } catch {
    // An old or empty package list: refresh it once and try again.
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'ignore', env });
  }
  const installed = findOnPath('redis-server');
  if (!installed) throw new Error('apt-get install redis-server finished but redis-server is still not on PATH');
  return installed;
}

/** Sends one inline command and returns the raw reply (small replies only). */
export function redisCommand(port: number, host: string, command: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    let reply = '';
    const done = (error?: Error) => {
      socket.destroy();
      if (error) reject(error);
      else resolve(reply);
    };
    socket.setTimeout(2_000, () => done(new Error(`redis on port ${port}: no reply to ${command[0]}`)));
    socket.once('error', done);
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (isCompleteReply(reply)) done();
    });
    socket.write(encodeCommand(command));
  });
}

function encodeCommand(args: string[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`;
}

/** Enough of RESP for PING, CONFIG GET and INFO replies: simple strings, errors, bulks and flat arrays. */
function isCompleteReply(reply: string): boolean {
  const lines = reply.split('\r\n');
  if (lines.length < 2) return false;
  const head = lines[0];
  if (head[0] === '+' || head[0] === '-' || head[0] === ':') return true;
  if (head[0] === '$')
    return (
      Number(head.slice(1)) < 0 || Buffer.byteLength(reply, 'latin1') >= head.length + 2 + Number(head.slice(1)) + 2
    );
  if (head[0] === '*') {
    const count = Number(head.slice(1));
    // Each element of a flat array of bulk strings is two lines.
    return count <= 0 || lines.length >= 1 + count * 2 + 1;
  }
  return true;
}

function parseBulkArray(reply: string): string[] {
  const lines = reply.split('\r\n');
  const values: string[] = [];
  for (let i = 1; i + 1 < lines.length; i += 2) values.push(lines[i + 1]);
  return values;
}

export async function startBenchRedis(scope: Scope, options: BenchRedisOptions = {}): Promise<BenchRedis> {
  const log = options.log ?? (() => {});
  const binary = ensureRedisServer(log);
  const version = /v=(\S+)/.exec(execFileSync(binary, ['--version']).toString())?.[1] ?? 'unknown';
  const raised = options.maxValueBytes === undefined ? undefined : Math.max(options.maxValueBytes, 512 * 1024 * 1024);
  try {
    return await launch(scope, binary, version, options, raised);
  } catch (error) {
    if (raised === undefined) throw error;
    // An old server that refuses the raised limits: run with its defaults and let the suite say so.
    log(
      `redis-server refused proto-max-bulk-len ${raised} (${(error as Error).message.split('\n')[0]}); using its default`,
    );
    return launch(scope, binary, version, options, undefined);
  }
}

async function launch(
  scope: Scope,
  binary: string,
  version: string,
  options: BenchRedisOptions,
  maxValueBytes: number | undefined,
): Promise<BenchRedis> {
  const host = '127.0.0.1';
  const port = await freePort();
  const dir = scope.path('redis');
  fs.mkdirSync(dir);
  const args = [
    '--port',
    String(port),
    '--bind',
    host,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--protected-mode',
    'yes',
    '--loglevel',
    'warning',
  ];
  const socket = options.unixSocket ? path.join(dir, 'redis.sock') : undefined;
  if (socket) args.push('--unixsocket', socket, '--unixsocketperm', '700');
  if (maxValueBytes !== undefined) {
    // A request carrying the value must fit the query buffer too.
    args.push(
      '--proto-max-bulk-len',
      String(maxValueBytes),
      '--client-query-buffer-limit',
      String(Math.max(2 * maxValueBytes, 1024 ** 3)),
    );
  }
  const { command, args: argv } = onCpu(options.cpu, binary, args);
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<string>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? `code ${code}`)),
  );
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  const stop = async (): Promise<void> => {
    await stopProcess(child, exited);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const forget = scope.defer(stop);

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (hasExited) {
      forget();
      await stop();
      throw new Error(`redis-server exited (${await exited}) before it was ready:\n${output}`);
    }
    try {
      if ((await redisCommand(port, host, ['PING'])).startsWith('+PONG')) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      forget();
      await stop();
      throw new Error(`redis-server not ready on port ${port} within ${READY_TIMEOUT_MS} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const [, limit] = parseBulkArray(await redisCommand(port, host, ['CONFIG', 'GET', 'proto-max-bulk-len']));
  const description =
    `redis-server ${version} on ${host}:${port}, no persistence (--save '' --appendonly no)` +
    (maxValueBytes === undefined ? ', default limits' : `, --proto-max-bulk-len ${maxValueBytes}`) +
    (socket ? `, also on UNIX socket ${socket}` : '');
  return {
    host,
    port,
    pid: child.pid!,
    version,
    maxValueBytes: Number(limit),
    socket,
    description,
    async stop() {
      await stop();
      forget();
    },
  };
}
