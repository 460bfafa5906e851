/**
 * The soak's client processes: starts worker.ts in fresh Nodes, hands their reports to the
 * runner, SIGKILLs one on demand and starts its next generation in its place (or all of them,
 * around a restart of the daemon), and stops them all politely at the end (SIGKILL for any that
 * will not).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from '../lib/child';
import type { Scope } from '../lib/scope';
import type { RunnerMessage, WorkerMessage } from './messages';

const WORKER_SCRIPT = path.join(__dirname, 'worker.ts');
/** 32 workers starting tsx at once on a loaded 2-core machine can take minutes. */
const READY_TIMEOUT_MS = 300_000;
const STDERR_TAIL_CHARS = 4_000;

interface Running {
  child: ChildProcess;
  generation: number;
  exited: Promise<void>;
  stderr: string;
}

export interface WorkerPoolOptions {
  socket: string;
  seed: number;
  maxObjectBytes: number;
  /** Workers persist what they name (the daemon is restarted on its data dir during the run). */
  persistNamed: boolean;
  onMessage(index: number, message: WorkerMessage): void;
  /** A worker that died on its own (not killed by the pool): its exit and the end of its stderr. */
  onCrash(index: number, how: string, stderr: string): void;
}

export class WorkerPool {
  private readonly running = new Map<number, Running>();
  private readonly killed = new Set<ChildProcess>();
  private stopping = false;
  kills = 0;

  constructor(
    private readonly scope: Scope,
    private readonly options: WorkerPoolOptions,
  ) {
    scope.defer(() => this.killAll());
    // Should the runner itself die, no worker may outlive it (a frozen one never would exit).
    process.once('exit', this.killOnExit);
  }

  private readonly killOnExit = (): void => {
    for (const running of this.running.values()) running.child.kill('SIGKILL');
  };

  get size(): number {
    return this.running.size;
  }

  /**
   * Starts worker `index` (its next generation) and resolves once it has connected (or exited,
   * or after READY_TIMEOUT_MS: the run goes on and a worker that never works shows in the counts).
   */
  async start(index: number, generation = 0): Promise<void> {
    const { socket, seed, maxObjectBytes, persistNamed } = this.options;
    const args = [socket, index, generation, seed, maxObjectBytes, persistNamed ? 'persist' : 'memory'].map(String);
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', WORKER_SCRIPT, ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    const running: Running = {
      child,
      generation,
      stderr: '',
      exited: new Promise((resolve) => child.on('exit', () => resolve())),
    };
    this.running.set(index, running);
    child.stderr!.on('data', (chunk: Buffer) => {
      running.stderr = (running.stderr + chunk.toString()).slice(-STDERR_TAIL_CHARS);
    });
    let ready: () => void = () => {};
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    child.on('message', (message: WorkerMessage) => {
      if (message.type === 'ready') ready();
      this.options.onMessage(index, message);
    });
    child.on('exit', (code, signal) => {
      if (this.running.get(index) === running) this.running.delete(index);
      if (!this.killed.has(child) && !(this.stopping && code === 0)) {
        this.options.onCrash(index, signal ?? `code ${code}`, running.stderr);
      }
      ready();
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([isReady, new Promise((resolve) => (timer = setTimeout(resolve, READY_TIMEOUT_MS)))]).finally(
      () => clearTimeout(timer),
    );
  }

  /** SIGKILLs worker `index` and starts its next generation. */
  async killAndRestart(index: number): Promise<void> {
    const running = this.running.get(index);
    if (!running || this.stopping) return;
    this.killed.add(running.child);
    running.child.kill('SIGKILL');
    this.kills++;
    await running.exited;
    if (!this.stopping) await this.start(index, running.generation + 1);
  }

  /**
   * SIGSTOPs every worker, mid-request as they are, runs `meanwhile` (the daemon's SIGKILL and
   * restart), then SIGKILLs them and starts their next generations against the new daemon.
   */
  async freezeAndRestartAll(meanwhile: () => Promise<void>): Promise<void> {
    const all = [...this.running.entries()];
    for (const [, running] of all) running.child.kill('SIGSTOP');
    try {
      await meanwhile();
    } finally {
      for (const [, running] of all) {
        this.killed.add(running.child);
        running.child.kill('SIGKILL');
      }
      await Promise.all(all.map(([, running]) => running.exited));
    }
    this.kills += all.length;
    if (!this.stopping) await Promise.all(all.map(([index, running]) => this.start(index, running.generation + 1)));
  }

  indexes(): number[] {
    return [...this.running.keys()];
  }

  /** Asks every worker to stop; resolves with the indexes of those that had to be SIGKILLed. */
  async stopAll(graceMs: number): Promise<number[]> {
    this.stopping = true;
    const all = [...this.running.entries()];
    for (const [, running] of all) {
      if (running.child.connected) running.child.send({ type: 'stop' } satisfies RunnerMessage);
    }
    const hung: number[] = [];
    await Promise.all(
      all.map(async ([index, running]) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
        if (await Promise.race([running.exited.then(() => false), late])) {
          hung.push(index);
          this.killed.add(running.child);
          running.child.kill('SIGKILL');
          await running.exited;
        }
        clearTimeout(timer);
      }),
    );
    return hung.sort((a, b) => a - b);
  }

  private async killAll(): Promise<void> {
    this.stopping = true;
    process.off('exit', this.killOnExit);
    for (const running of this.running.values()) {
      this.killed.add(running.child);
      running.child.kill('SIGKILL');
    }
    await Promise.all([...this.running.values()].map((running) => running.exited));
  }
}
