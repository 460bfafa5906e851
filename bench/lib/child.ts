/**
 * The runner's half of the child-process protocol (see serve-commands.ts): spawns a script from
 * bench/children in a fresh Node (through child-main.js: tsx compiles the script, then steps
 * aside so that trellis loads from dist/ as a user's process loads it), waits for it to say it is ready, and calls its
 * commands with types taken from the script's own command table. A fresh process per trial, as
 * better-sqlite3's benchmark does, keeps one trial's heap, JIT state and mappings out of the next.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { onCpu } from './cpu';
import { BUILD_ENV } from './dist';
import type { Scope } from './scope';
import type { ChildMessage, CommandRequest, CommandTable } from './serve-commands';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const CHILDREN_DIR = path.join(REPO_ROOT, 'bench', 'children');
/** --expose-gc lets a child collect garbage before a trial, outside the timed section. */
export const CHILD_NODE_ARGS = ['--expose-gc', path.join(__dirname, 'child-main.js')];
/**
 * Node and V8 options for every bench child, space-separated, for looking inside one (measurement
 * only; NODE_OPTIONS refuses most V8 flags): TRELLIS_BENCH_CHILD_FLAGS='--trace-gc' or
 * '--trace-baseline-batch-compilation', '--cpu-prof --cpu-prof-dir=DIR'. A child's output goes to
 * the runner's stdout. Off in a timed run: the flags change what they look at.
 */
export const CHILD_FLAGS_ENV = 'TRELLIS_BENCH_CHILD_FLAGS';

function childFlags(): string[] {
  return (process.env[CHILD_FLAGS_ENV] ?? '').split(' ').filter((flag) => flag !== '');
}

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const STDERR_TAIL_CHARS = 4_000;

export interface BenchChild<C extends CommandTable> {
  readonly pid: number;
  readonly name: string;
  /** Calls one command; rejects with the child's error, or if the child exits first. */
  call<K extends keyof C & string>(command: K, args: Parameters<C[K]>[0]): Promise<Awaited<ReturnType<C[K]>>>;
  /** Disconnects (the child exits on its own), then SIGKILL after a grace period. */
  stop(): Promise<void>;
}

export interface ChildOptions {
  /** Pins the child to this CPU (see cpu.ts). */
  cpu?: number;
  /** Set in the child's environment, over the runner's own. */
  env?: NodeJS.ProcessEnv;
  /** Another build's package root for the child to load trellis from (an A/B run; dist.ts); default this tree. */
  buildRoot?: string;
}

/** Starts bench/children/<script> with `args` on its command line; it is stopped when `scope` closes. */
export async function startChild<C extends CommandTable>(
  scope: Scope,
  script: string,
  args: string[] = [],
  options: ChildOptions = {},
): Promise<BenchChild<C>> {
  const file = path.join(CHILDREN_DIR, script);
  const name = `${script} ${args.join(' ')}`.trim();
  const nodeArgs = [...childFlags(), ...CHILD_NODE_ARGS, file, ...args];
  const { command, args: argv } = onCpu(options.cpu, process.execPath, nodeArgs);
  const child = spawn(command, argv, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env, ...(options.buildRoot ? { [BUILD_ENV]: options.buildRoot } : {}) },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL_CHARS);
  });
  const exited = new Promise<string>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? `code ${code}`)),
  );
  const describeExit = (how: string) => new Error(`bench child ${name} exited (${how})${stderr ? `:\n${stderr}` : ''}`);

  const replies = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextSeq = 1;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.on('message', (message: ChildMessage) => {
    if ('ready' in message) return markReady();
    const waiter = replies.get(message.seq);
    replies.delete(message.seq);
    if ('error' in message) waiter?.reject(new Error(`${name}: ${message.error.stack ?? message.error.message}`));
    else waiter?.resolve(message.result);
  });
  void exited.then((how) => {
    for (const waiter of replies.values()) waiter.reject(describeExit(how));
    replies.clear();
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };
  const forget = scope.defer(stop);

  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      exited.then((how) => Promise.reject(describeExit(how))),
      new Promise(
        (_, reject) =>
          (timer = setTimeout(
            () => reject(new Error(`bench child ${name} not ready within ${READY_TIMEOUT_MS} ms\n${stderr}`)),
            READY_TIMEOUT_MS,
          )),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }

  return {
    pid: child.pid!,
    name,
    call(command, args) {
      if (!child.connected) return Promise.reject(new Error(`bench child ${name} is not running`));
      const seq = nextSeq++;
      return new Promise((resolve, reject) => {
        replies.set(seq, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ seq, command, args } satisfies CommandRequest);
      });
    },
    async stop() {
      await stop();
      forget();
    },
  };
}

/** Starts a child, runs `use`, and stops the child whatever happens: one trial, one process. */
export async function withChild<C extends CommandTable, T>(
  scope: Scope,
  script: string,
  args: string[],
  options: ChildOptions,
  use: (child: BenchChild<C>) => Promise<T>,
): Promise<T> {
  const child = await startChild<C>(scope, script, args, options);
  try {
    return await use(child);
  } finally {
    await child.stop();
  }
}
