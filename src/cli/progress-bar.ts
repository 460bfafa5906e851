/**
 * A progress bar on stderr for work that takes over a second: bytes done of the total, rate and
 * time left. It draws only on a terminal (never into a pipe or a file) and only once a second
 * has passed, so quick commands print nothing extra. io/progress.ts draws from the first byte
 * and has no ETA, so the command line keeps its own.
 */
import { formatBytes } from './output';

const SHOW_AFTER_MS = 1000;
const REDRAW_MS = 100;
const BAR_WIDTH = 24;

export interface ProgressBar {
  /** Bytes done so far (absolute, not a delta). */
  update(bytes: number): void;
  /** Draws the final state (when it was drawn at all) and ends the line; once. */
  done(): void;
}

const SILENT: ProgressBar = { update() {}, done() {} };

export function progressBar(
  label: string,
  totalBytes: number,
  stream: NodeJS.WriteStream = process.stderr,
): ProgressBar {
  if (!stream.isTTY) return SILENT;
  const started = Date.now();
  let drawnAt = 0;
  let bytes = 0;
  let finished = false;
  const draw = (now: number) => {
    drawnAt = now;
    const seconds = Math.max((now - started) / 1000, 0.001);
    const rate = bytes / seconds;
    const fraction = totalBytes > 0 ? Math.min(bytes / totalBytes, 1) : 1;
    const filled = Math.round(fraction * BAR_WIDTH);
    const eta = rate > 0 && bytes < totalBytes ? `, ETA ${formatSeconds((totalBytes - bytes) / rate)}` : '';
    stream.write(
      `\r${label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${formatBytes(bytes)} / ` +
        `${formatBytes(totalBytes)} (${Math.floor(fraction * 100)}%), ${formatBytes(rate)}/s${eta}\x1b[K`,
    );
  };
  return {
    update(done) {
      if (finished) return;
      bytes = done;
      const now = Date.now();
      if (now - started >= SHOW_AFTER_MS && now - drawnAt >= REDRAW_MS) draw(now);
    },
    done() {
      if (finished) return;
      finished = true;
      if (drawnAt === 0) return;
      draw(Date.now());
      stream.write('\n');
    },
  };
}

function formatSeconds(seconds: number): string {
  const whole = Math.ceil(seconds);
  return whole < 60 ? `${whole}s` : `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
}
