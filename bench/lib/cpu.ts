/**
 * Where processes run. On a small VM a round trip between processes on two different vCPUs pays
 * for waking the idle one (about 60 µs on the 2-core machine this was written on), while on one
 * vCPU it is a context switch (about 15 µs). Left to the scheduler, a pair of processes flips
 * between the two, so two unpinned trials can differ 3x for no reason in the code. Pinning with
 * taskset makes every trial of a run pay the same, which is what ratios need.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Placement {
  /** CPU for the daemon and the echo server: the "server side" of every round trip. */
  serverCpu: number;
  /** CPU for measuring clients, memcpy and the echo client. */
  clientCpu: number;
}

function findTaskset(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'taskset');
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

const TASKSET = findTaskset();

/** Server and clients on different CPUs, the way a daemon is used; undefined when pinning is impossible. */
export function crossCorePlacement(): Placement | undefined {
  const cpus = os.cpus().length;
  if (!TASKSET || cpus < 2) return undefined;
  return { serverCpu: cpus - 1, clientCpu: 0 };
}

/** Everything on the server's CPU: round trips cost a context switch instead of a wake-up. */
export function sameCorePlacement(cross: Placement): Placement {
  return { serverCpu: cross.serverCpu, clientCpu: cross.serverCpu };
}

/** The command line that runs `command args` on `cpu` (taskset execs, so the pid stays the same). */
export function onCpu(cpu: number | undefined, command: string, args: string[]): { command: string; args: string[] } {
  if (cpu === undefined || !TASKSET) return { command, args };
  return { command: TASKSET, args: ['--cpu-list', String(cpu), command, ...args] };
}

export function describePlacement(placement: Placement | undefined): string {
  if (!placement) return 'unpinned (taskset missing or a single CPU): expect noisy round trips';
  if (placement.serverCpu === placement.clientCpu) return `all on CPU ${placement.serverCpu}`;
  return `daemon/echo server on CPU ${placement.serverCpu}, clients on CPU ${placement.clientCpu}`;
}
