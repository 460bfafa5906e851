/**
 * Where `trellis get` writes: a file (-o) or stdout. A write resolves once the chunk has been
 * handed on, so a caller may reuse or release the memory behind it (a shared-memory view, the
 * CSV writer's buffer) as soon as it resolves.
 */
import * as fs from 'node:fs';
import type { ByteOutput } from '../../io/csv/byte-sink';

export interface OutputSink extends ByteOutput {
  readonly path: string | undefined;
  /** Bytes written so far. */
  readonly written: number;
  close(): Promise<void>;
}

/** A file (created or truncated) or, without a path, stdout. */
export async function openOutput(path: string | undefined): Promise<OutputSink> {
  return path === undefined ? stdoutSink() : fileSink(path, await fs.promises.open(path, 'w'));
}

function fileSink(path: string, handle: fs.promises.FileHandle): OutputSink {
  let written = 0;
  return {
    path,
    get written() {
      return written;
    },
    async write(buffer, offset, length) {
      let done = 0;
      while (done < length) done += (await handle.write(buffer, offset + done, length - done)).bytesWritten;
      written += length;
      return { bytesWritten: length };
    },
    close: () => handle.close(),
  };
}

function stdoutSink(): OutputSink {
  let written = 0;
  return {
    path: undefined,
    get written() {
      return written;
    },
    write(buffer, offset, length) {
      return new Promise((resolve, reject) => {
        process.stdout.write(buffer.subarray(offset, offset + length), (error) => {
          if (error) return reject(error);
          written += length;
          resolve({ bytesWritten: length });
        });
      });
    },
    close: async () => {},
  };
}

/** Writes a view in chunks, calling `onProgress` with the bytes done; the view is never copied. */
export async function writeBytes(
  sink: OutputSink,
  bytes: Uint8Array,
  onProgress: (done: number) => void,
): Promise<void> {
  const CHUNK = 8 << 20;
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let offset = 0; offset < buffer.length; offset += CHUNK) {
    const length = Math.min(CHUNK, buffer.length - offset);
    await sink.write(buffer, offset, length);
    onProgress(offset + length);
  }
}
