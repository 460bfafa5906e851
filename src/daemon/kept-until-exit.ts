/**
 * Shared memory that a client the daemon threw off may still write. The daemon closes such a
 * client's connection (a protocol error, a bad put-ring record) while its process runs on and
 * writes through the buffers it mapped until it notices the close: its put ring and arenas, its
 * unsealed blobs, its stream reader's cursor. Freed at once, a block would go to the next object
 * that fits, and those writes would change that object's bytes. So the blocks stay out of use
 * until the process (its pid from the socket's peer credentials) has exited: that run of it, told
 * by its start time read when it registered (process-instance.ts), so that a later process given
 * the same pid does not keep them.
 *
 * A client that closes, or loses its connection, itself is not kept: trellis's client detaches
 * every writable buffer before it closes (IpcChannel.writables), and a process that exited writes
 * nothing. One watch serves every part that frees such memory (put-rings.ts, object-table.ts).
 */
import { daemonLog } from './log';
import { processRuns, type ProcessInstance } from './process-instance';
import type { Placement } from './segment-pool';
import type { ClientSession } from './session';

/** How often memory kept for thrown-off clients is checked for their process having exited. */
const EXIT_CHECK_MS = 1000;

export class KeptUntilExit {
  /** Blocks kept, by the process that may write them (`pid:start`). */
  private readonly kept = new Map<string, { process: ProcessInstance; blocks: Placement[] }>();
  private check?: NodeJS.Timeout;

  /** `free`: gives a block back to the pool. */
  constructor(private readonly free: (block: Placement) => void) {}

  /** Whether what `session` could write must be kept (see the top) rather than freed now. */
  static applies(session: ClientSession): boolean {
    return session.evicted && session.pid > 0;
  }

  /** Frees `block` now, or, when `session` was thrown off and may still write it, once its process exits. */
  release(session: ClientSession, block: Placement): void {
    if (KeptUntilExit.applies(session)) this.keep(session, [block]);
    else this.free(block);
  }

  /** Keeps `blocks` out of use until this run of the process has exited. */
  keep(process: ProcessInstance, blocks: Placement[]): void {
    if (blocks.length === 0) return;
    const key = `${process.pid}:${process.startTime ?? ''}`;
    const kept = this.kept.get(key);
    if (kept) kept.blocks.push(...blocks);
    else this.kept.set(key, { process: { pid: process.pid, startTime: process.startTime }, blocks: [...blocks] });
    this.check ??= setInterval(() => this.freeExited(), EXIT_CHECK_MS).unref();
  }

  /** The daemon stops: its pool goes with everything in it. */
  close(): void {
    clearInterval(this.check);
    this.check = undefined;
    this.kept.clear();
  }

  private freeExited(): void {
    for (const [key, { process, blocks }] of this.kept) {
      if (processRuns(process)) continue;
      this.kept.delete(key);
      for (const block of blocks) this.free(block);
      daemonLog().debug(
        { pid: process.pid, blocks: blocks.length },
        'freed the memory kept for a thrown-off client that exited',
      );
    }
    if (this.kept.size === 0) {
      clearInterval(this.check);
      this.check = undefined;
    }
  }
}
