/** The plain-fs baselines the disk suites compare with: whole-file writes and reads, and a cold page cache. */
import * as fs from 'node:fs';

/** Writes `bytes` to a new file and fsyncs it, as a careful program would. */
export async function writeAndSync(file: string, bytes: Uint8Array): Promise<void> {
  const handle = await fs.promises.open(file, 'w', 0o600);
  try {
    for (let done = 0; done < bytes.length;)
      done += (await handle.write(bytes, done, bytes.length - done, done)).bytesWritten;
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads a whole file into `into` (which has its size). */
export async function readInto(file: string, into: Uint8Array): Promise<void> {
  const handle = await fs.promises.open(file, 'r');
  try {
    for (let done = 0; done < into.length;) done += (await handle.read(into, done, into.length - done, done)).bytesRead;
  } finally {
    await handle.close();
  }
}

/** Empties the page cache so reads come from the disk; false when not allowed (not root). */
export function dropPageCache(): boolean {
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}
