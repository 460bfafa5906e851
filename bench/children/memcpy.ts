/**
 * Baseline: copying bytes between two preallocated, already touched JS buffers in one process.
 * This is the floor for a put, which must at least copy the caller's bytes into shared memory.
 */
import { sample, type SampleSet } from '../lib/sampler';
import { collectGarbage, serveCommands } from '../lib/serve-commands';

export interface MemcpyArgs {
  bytes: number;
  iterations: number;
  warmup: number;
  opsPerSample: number;
}

const commands = {
  async memcpy({ bytes, iterations, warmup, opsPerSample }: MemcpyArgs): Promise<SampleSet> {
    // Drops the previous trial's buffers first, so two large trials never overlap in memory.
    collectGarbage();
    // fill() writes every page, so no page fault lands inside the timed copies.
    const source = new Uint8Array(bytes).fill(0x5a);
    const target = new Uint8Array(bytes).fill(0xa5);
    return sample(() => target.set(source), { iterations, warmup, opsPerSample });
  },
};

export type MemcpyCommands = typeof commands;

if (require.main === module) serveCommands(commands);
