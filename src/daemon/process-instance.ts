/**
 * One run of a process, told from a later process that was given the same pid: its pid and its
 * start time (field 22 of /proc/PID/stat, clock ticks after boot), which the later one does not
 * share. Used where the daemon waits for a client's process to exit (kept-until-exit.ts).
 */
import { readFileSync } from 'node:fs';

export interface ProcessInstance {
  readonly pid: number;
  /** Undefined where /proc could not be read (another pid namespace, hidepid): the pid alone tells. */
  readonly startTime?: string;
}

/** The start time of the process that has `pid` now, or undefined (none, or /proc unreadable). */
export function processStartTime(pid: number): string | undefined {
  return processStat(pid)?.[19];
}

/**
 * Fields 3 on of /proc/PID/stat (state first, start time at 19), or undefined (no such process,
 * or /proc unreadable).
 */
function processStat(pid: number): string[] | undefined {
  if (!(pid > 0)) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The name (field 2) is in parentheses and may hold spaces and ')': count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ', 20);
  } catch {
    return undefined;
  }
}

/**
 * Whether this run of the process goes on: its pid is in use (signal 0 checks without sending;
 * EPERM: in use by another user) by a process that started when it did and has not exited (a
 * zombie, not yet reaped by its parent, writes nothing). A start time that cannot be read now,
 * while the pid is in use, counts as the same (it exited just now, or /proc hides it): the next
 * look tells.
 */
export function processRuns(process: ProcessInstance): boolean {
  try {
    globalThis.process.kill(process.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = processStat(process.pid);
  if (stat === undefined) return true;
  if (stat[0] === 'Z' || stat[0] === 'X') return false;
  return process.startTime === undefined || stat[19] === process.startTime;
}
