/**
 * Worker threads that parse chunks of one file: one pool per parse, closed when it ends. Tasks
 * wait in a queue and go to whichever worker is idle; replies come back in any order and the
 * caller (ordered-chunks.ts) puts them back in file order.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ChunkOutcome, ChunkPlan, ChunkTask } from './chunk';
import type { ChunkRunner } from './chunk-runner';

export interface WorkerData {
  fd: number;
  fileSize: number;
  plan: ChunkPlan;
}

export interface WorkerFailureInfo {
  message: string;
  stack?: string;
  code?: string;
  syscall?: string;
}

export type WorkerReply = { index: number; outcome: ChunkOutcome } | { index: number; failure: WorkerFailureInfo };

/** An error thrown inside a worker, rebuilt here; file-system errors keep their code and syscall. */
export class WorkerFailure extends Error {
  readonly code?: string;
  readonly syscall?: string;

  constructor(info: WorkerFailureInfo) {
    super(info.message);
    this.name = 'WorkerFailure';
    this.code = info.code;
    this.syscall = info.syscall;
    if (info.stack) this.stack = info.stack;
  }
}

/**
 * The worker script beside this file. From TypeScript sources (tests, bench) the worker needs tsx
 * to load it; compiled JavaScript loads as it is.
 */
function workerScript(): { file: string; execArgv?: string[] } {
  const extension = path.extname(__filename);
  const file = path.join(__dirname, `worker${extension}`);
  return extension === '.ts' ? { file, execArgv: ['--require', require.resolve('tsx/cjs')] } : { file };
}

interface Job {
  task: ChunkTask;
  resolve(outcome: ChunkOutcome): void;
  reject(error: Error): void;
}

export class WorkerPool implements ChunkRunner {
  readonly parallelism: number;
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private failure: Error | undefined;
  private closed = false;

  constructor(count: number, data: WorkerData) {
    this.parallelism = count;
    const { file, execArgv } = workerScript();
    for (let i = 0; i < count; i++) {
      const worker = new Worker(file, { workerData: data, execArgv });
      worker.on('message', (reply: WorkerReply) => this.finish(worker, reply));
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`a CSV parsing worker exited unexpectedly (code ${code})`));
      });
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  run(task: ChunkTask, urgent = false): Promise<ChunkOutcome> {
    return new Promise((resolve, reject) => {
      if (this.failure || this.closed) return reject(this.failure ?? new Error('the CSV worker pool is closed'));
      const job = { task, resolve, reject };
      if (urgent) this.queue.unshift(job);
      else this.queue.push(job);
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rejectAll(new Error('the CSV worker pool is closed'));
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.busy.set(worker, job);
      worker.postMessage(job.task);
    }
  }

  private finish(worker: Worker, reply: WorkerReply): void {
    const job = this.busy.get(worker);
    this.busy.delete(worker);
    this.idle.push(worker);
    if (job) {
      if ('failure' in reply) job.reject(new WorkerFailure(reply.failure));
      else job.resolve(reply.outcome);
    }
    this.dispatch();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.rejectAll(error);
  }

  private rejectAll(error: Error): void {
    for (const job of [...this.busy.values(), ...this.queue]) job.reject(error);
    this.busy.clear();
    this.queue.length = 0;
  }
}
