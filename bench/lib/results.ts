/**
 * Results files: bench/results/<suite>-<ISO timestamp>.json, one per suite per run (ignored by
 * git). The timestamp has its colons replaced so the name is safe on every filesystem and still
 * sorts by time. The machine description goes in too, since a ratio only compares within a run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from './child';
import type { SuiteReport } from './suite';

export const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');

export interface MachineInfo {
  node: string;
  platform: string;
  kernel: string;
  cpus: number;
  cpuModel: string;
  totalMemoryBytes: number;
}

export function describeMachine(): MachineInfo {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    totalMemoryBytes: os.totalmem(),
  };
}

/** Writes the suite's report and returns the file's path. */
export function writeResults(suite: string, startedAt: Date, durationMs: number, report: SuiteReport): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = startedAt.toISOString().replace(/:/g, '-');
  const file = path.join(RESULTS_DIR, `${suite}-${stamp}.json`);
  const payload = { suite, startedAt: startedAt.toISOString(), durationMs, machine: describeMachine(), ...report };
  fs.writeFileSync(file, JSON.stringify(payload, replaceNonFinite, 2) + '\n');
  return file;
}

/** JSON has no NaN: a statistic that does not apply (a p99 of 4 samples) is written as null. */
function replaceNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
