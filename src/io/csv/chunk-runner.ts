/**
 * Something that parses chunks: worker threads (worker-pool.ts) or the calling thread. The
 * in-thread runner is for small files, where starting workers would cost more than it saves,
 * and for callers that ask for `workers: 0`.
 */
import type { ChunkOutcome, ChunkParser, ChunkTask } from './chunk';

export interface ChunkRunner {
  /** Chunks parsed at once: 0 for the calling thread. */
  readonly parallelism: number;
  /** Parses a chunk; `urgent` puts it ahead of chunks already waiting. */
  run(task: ChunkTask, urgent?: boolean): Promise<ChunkOutcome>;
  close(): Promise<void>;
}

export class InThreadRunner implements ChunkRunner {
  readonly parallelism = 0;

  constructor(private readonly parser: ChunkParser) {}

  async run(task: ChunkTask): Promise<ChunkOutcome> {
    // A chunk takes tens of milliseconds: let timers and I/O run between chunks.
    await new Promise((resolve) => setImmediate(resolve));
    return this.parser.parse(task);
  }

  async close(): Promise<void> {}
}
