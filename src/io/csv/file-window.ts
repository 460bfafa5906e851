/**
 * A window of a file's bytes held in one reusable Buffer, followed by a newline sentinel that
 * the tokenizer relies on (see tokenizer.ts). When a row runs past the window, advance() keeps
 * the unfinished part, moves it to the front and reads on, growing the buffer for long rows.
 */
import * as fs from 'node:fs';
import { LF } from './tokenizer';

/** Extra bytes read past a chunk's end, so that its last row usually completes without a second read. */
export const OVERREAD_BYTES = 64 * 1024;

export class FileWindow {
  /** The window's bytes; `bytes[length]` is the sentinel newline. */
  bytes: Buffer;
  /** The file offset of bytes[0]. */
  base = 0;
  length = 0;
  /** Whether the window reaches the end of the file. */
  atEof = false;

  constructor(
    private readonly fd: number,
    readonly fileSize: number,
    capacity = OVERREAD_BYTES,
  ) {
    this.bytes = Buffer.allocUnsafeSlow(capacity + 1);
  }

  /** Fills the window with up to `want` bytes from `offset` (fewer at the end of the file). */
  load(offset: number, want: number): void {
    if (want + 1 > this.bytes.length) this.bytes = Buffer.allocUnsafeSlow(want + 1);
    this.base = offset;
    this.length = 0;
    this.fill(Math.min(want, this.bytes.length - 1));
  }

  /**
   * Drops the bytes before index `keepFrom`, moves the rest to the front and reads more after them.
   * Returns how far the bytes moved (subtract it from any index into the old window).
   */
  advance(keepFrom: number): number {
    const kept = this.length - keepFrom;
    let target = this.bytes;
    // A row longer than half the window: double it, so long rows cost amortized linear time.
    if (kept * 2 > this.bytes.length - 1) target = Buffer.allocUnsafeSlow(2 * (this.bytes.length - 1) + 1);
    this.bytes.copy(target, 0, keepFrom, this.length);
    this.bytes = target;
    this.base += keepFrom;
    this.length = kept;
    this.fill(this.bytes.length - 1 - kept);
    return keepFrom;
  }

  private fill(want: number): void {
    const end = Math.min(this.length + want, this.fileSize - this.base);
    while (this.length < end) {
      const read = fs.readSync(this.fd, this.bytes, this.length, end - this.length, this.base + this.length);
      if (read === 0) break; // the file shrank under us: treat what we have as its end
      this.length += read;
    }
    this.atEof = this.base + this.length >= this.fileSize || this.length < end;
    this.bytes[this.length] = LF;
  }
}
