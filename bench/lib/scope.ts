/**
 * Everything a suite starts (daemons, children, temp files) registers its undo here, so that a
 * suite that throws, or a run stopped with Ctrl-C, leaves no process, socket or file behind.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

type Cleanup = () => unknown;

export class Scope {
  /** A private folder for sockets and files; short, because socket paths max out at 108 bytes. */
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-'));
  private readonly cleanups: Cleanup[] = [];
  private counter = 0;
  private closed = false;

  /** A fresh path inside the scope's folder. */
  path(name: string): string {
    return path.join(this.dir, `${this.counter++}-${name}`);
  }

  /** Registers an undo step; the returned function unregisters it (when it was done early). */
  defer(cleanup: Cleanup): () => void {
    this.cleanups.push(cleanup);
    return () => {
      const index = this.cleanups.indexOf(cleanup);
      if (index >= 0) this.cleanups.splice(index, 1);
    };
  }

  /** Runs every undo step, newest first, then removes the folder. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.cleanups.length > 0) {
      const cleanup = this.cleanups.pop()!;
      try {
        await cleanup();
      } catch (error) {
        // One failed undo must not stop the others from running.
        process.stderr.write(`bench: cleanup failed: ${(error as Error).message}\n`);
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
