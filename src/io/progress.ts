/** A one-line progress display on a terminal (stderr): bytes, rows and rate, redrawn at most 10 times a second. */
import { formatBytes } from '../daemon/sizes';

export interface Progress {
  bytes: number;
  rows: number;
  totalBytes: number;
}

export function terminalProgress(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
): ((progress: Progress) => void) | undefined {
  if (!stream.isTTY) return undefined;
  const started = Date.now();
  let drawn = 0;
  return (progress) => {
    const now = Date.now();
    const done = progress.bytes >= progress.totalBytes;
    if (!done && now - drawn < 100) return;
    drawn = now;
    const seconds = Math.max((now - started) / 1000, 0.001);
    const percent = progress.totalBytes > 0 ? Math.floor((progress.bytes / progress.totalBytes) * 100) : 100;
    stream.write(
      `\r${label}: ${formatBytes(progress.bytes)} / ${formatBytes(progress.totalBytes)} (${percent}%), ` +
        `${progress.rows.toLocaleString('en-US')} rows, ${formatBytes(progress.bytes / seconds)}/s\x1b[K${done ? '\n' : ''}`,
    );
  };
}
