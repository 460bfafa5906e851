/**
 * The machine's memory in use while a suite runs (MemTotal - MemAvailable, sampled by the
 * idle runner), so a suite can say how close it came to its budget. Shared memory (trellis
 * segments, /dev/shm files) counts as in use, as it should.
 */
import * as fs from 'node:fs';

export function memoryInUse(): number {
  const info = fs.readFileSync('/proc/meminfo', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(info)?.[1] ?? NaN) * 1024;
  return field('MemTotal') - field('MemAvailable');
}

export interface MemoryWatch {
  /** Stops sampling; returns what was in use at the start and the peak since. */
  stop(): { startBytes: number; peakBytes: number };
}

export function watchMemory(intervalMs = 100): MemoryWatch {
  const startBytes = memoryInUse();
  let peakBytes = startBytes;
  const timer = setInterval(() => (peakBytes = Math.max(peakBytes, memoryInUse())), intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      peakBytes = Math.max(peakBytes, memoryInUse());
      return { startBytes, peakBytes };
    },
  };
}
