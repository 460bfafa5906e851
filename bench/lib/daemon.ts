/**
 * Runs trellisd the way users do, through its shipped command line (bin/trellisd, which runs the
 * compiled dist/) in its own process, so that every client measurement crosses a real process
 * boundary. Stops it with SIGTERM (a clean shutdown
 * removes the socket and releases the segments), then SIGKILL if it hangs.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { REPO_ROOT } from './child';
import { onCpu } from './cpu';
import { assertDistFresh, TRELLISD_BIN, trellisdOf } from './dist';
import type { Scope } from './scope';
import { stopProcess } from '../../test/fixtures/processes';

const READY_LINE = /^trellisd ready socket=(\S+) instance=(\d+)(?: rpc=(\S+))?(?: http=(\S+))?$/m;
const READY_TIMEOUT_MS = 20_000;

export interface BenchDaemon {
  readonly socket: string;
  readonly pid: number;
  readonly instanceId: number;
  /** host:port of its RPC port, when started with --rpc-port. */
  readonly rpcEndpoint?: string;
  /** host:port of its HTTP port, when started with --http-port. */
  readonly httpEndpoint?: string;
  stop(): Promise<void>;
}

export interface BenchDaemonOptions {
  /** --size */
  size: string;
  /** Pins the daemon to this CPU (see cpu.ts). */
  cpu?: number;
  /** More trellisd flags, such as ['--rpc-port', '0']. */
  args?: string[];
  /** How long to wait for the ready line; default 20 s. */
  readyTimeoutMs?: number;
  /** The socket path, to start a daemon again where clients expect it; default a new one. */
  socket?: string;
  /** Another build's package root (an A/B run, ab-build.ts): its bin/trellisd runs; default this tree's. */
  buildRoot?: string;
  /** Set in the daemon's environment, over the runner's own (an A/B run: the build's own code cache). */
  env?: NodeJS.ProcessEnv;
}

export async function startBenchDaemon(scope: Scope, options: BenchDaemonOptions): Promise<BenchDaemon> {
  assertDistFresh();
  const socket = options.socket ?? scope.path('trellisd.sock');
  // The daemon runs without --expose-gc: it is measured as shipped.
  const { command, args } = onCpu(options.cpu, process.execPath, [
    options.buildRoot ? trellisdOf(options.buildRoot) : TRELLISD_BIN,
    '--socket',
    socket,
    '--size',
    options.size,
    ...(options.args ?? []),
  ]);
  const child = spawn(command, args, {
    cwd: options.buildRoot ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<string>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? `code ${code}`)),
  );

  const stop = async (): Promise<void> => {
    await stopProcess(child, exited);
    // A daemon that was killed cannot remove its own socket.
    fs.rmSync(socket, { force: true });
  };
  const forget = scope.defer(stop);

  let timer: NodeJS.Timeout | undefined;
  const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`trellisd not ready within ${readyTimeoutMs} ms:\n${output}`)),
      readyTimeoutMs,
    );
    child.stdout!.on('data', () => {
      const found = READY_LINE.exec(output);
      if (found) resolve(found);
    });
    void exited.then((how) => reject(new Error(`trellisd exited (${how}) before it was ready:\n${output}`)));
  }).finally(() => clearTimeout(timer));

  return {
    socket: match[1],
    pid: child.pid!,
    instanceId: Number(match[2]),
    rpcEndpoint: match[3],
    httpEndpoint: match[4],
    async stop() {
      await stop();
      forget();
    },
  };
}
