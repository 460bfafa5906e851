/**
 * Chunks in file order, each starting exactly where the rows before it ended.
 *
 * A file is cut every `chunkBytes`, but a row only ends at a newline outside quotes, and only a
 * sequential scan knows which newlines those are. So chunks after the first are parsed
 * speculatively, in parallel, from the first newline after their cut (see chunk.ts). The
 * previous chunk's outcome then says where its last row really ended; a chunk that started
 * there is exactly what a sequential parse would have produced, and by induction from the first
 * chunk (which starts at the data's start) so is every accepted chunk. A chunk that started
 * elsewhere (its first newline was inside a quoted field) is parsed again from the right place,
 * ahead of the queue. Files whose quoted fields never hold newlines never reparse; the worst
 * case (a reparse per chunk) costs at most twice the work and stays correct.
 */
import type { ChunkOutcome, ChunkTask } from './chunk';
import type { ChunkRunner } from './chunk-runner';

/** Cuts [dataStart, fileSize) into tasks of about `chunkBytes`; the first starts exactly at dataStart. */
export function planChunks(dataStart: number, fileSize: number, chunkBytes: number): ChunkTask[] {
  const tasks: ChunkTask[] = [];
  for (let start = dataStart, index = 0; start < fileSize; start += chunkBytes, index++) {
    tasks.push({ index, start, end: Math.min(start + chunkBytes, fileSize), exact: index === 0 });
  }
  return tasks;
}

/** How many chunks a runner may parse ahead of the one being delivered, per parallel worker. */
const LOOKAHEAD_PER_WORKER = 2;

/**
 * Yields one outcome per task, in order, each starting where the previous one ended. Outcomes
 * may carry an error; the caller decides what to do with it (every outcome before it is real).
 * `stats.reparsed` counts speculative chunks that started in the wrong place.
 */
export async function* orderedChunks(
  runner: ChunkRunner,
  tasks: readonly ChunkTask[],
  stats: { reparsed: number } = { reparsed: 0 },
): AsyncGenerator<ChunkOutcome> {
  const speculate = runner.parallelism > 0;
  const lookahead = runner.parallelism * LOOKAHEAD_PER_WORKER;
  const pending = new Map<number, Promise<ChunkOutcome>>();
  let submitted = 0;
  let expectedStart = tasks.length > 0 ? tasks[0].start : 0;

  for (let index = 0; index < tasks.length; index++) {
    const task = tasks[index];
    if (speculate) {
      for (; submitted < tasks.length && submitted <= index + lookahead; submitted++) {
        const speculative = runner.run(tasks[submitted]);
        speculative.catch(() => {}); // awaited below, or abandoned when the caller stops early
        pending.set(submitted, speculative);
      }
    }
    const speculative = pending.get(index);
    pending.delete(index);
    if (expectedStart >= task.end) {
      // The previous chunk's last row ran past this whole chunk: nothing starts in it.
      yield { index, start: expectedStart, end: expectedStart, lines: 0, rows: 0, columns: [] };
      continue;
    }
    let outcome = speculative ? await speculative : undefined;
    if (outcome?.start !== expectedStart) {
      if (outcome) stats.reparsed++;
      outcome = await runner.run({ ...task, start: expectedStart, exact: true }, true);
    }
    yield outcome;
    if (outcome.error) return;
    expectedStart = outcome.end;
  }
}
