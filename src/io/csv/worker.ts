/**
 * A parsing worker thread: parses the chunks the pool sends and posts each outcome back with its
 * column buffers transferred, not copied. It reads through the file descriptor the calling
 * thread opened (descriptors belong to the process, and positioned reads need no shared
 * offset), so the file is opened and closed once, by the thread that owns it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { transferList } from './buffers';
import { ChunkParser, type ChunkTask } from './chunk';
import type { WorkerData, WorkerReply } from './worker-pool';

function serveChunks(): void {
  const { fd, fileSize, plan } = workerData as WorkerData;
  const port = parentPort!;
  const parser = new ChunkParser(fd, fileSize, plan);
  port.on('message', (task: ChunkTask) => {
    try {
      const outcome = parser.parse(task);
      port.postMessage({ index: task.index, outcome } satisfies WorkerReply, transferList(outcome.columns));
    } catch (error) {
      const { message, stack, code, syscall } = error as NodeJS.ErrnoException;
      port.postMessage({ index: task.index, failure: { message, stack, code, syscall } } satisfies WorkerReply);
    }
  });
}

serveChunks();
