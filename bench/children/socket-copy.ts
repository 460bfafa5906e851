/**
 * Baseline: the plain UNIX-socket copy a ByteStream is set against. One process writes `chunks`
 * chunks of `chunkBytes` from a ready buffer (what a producer holds) with the net module, waiting
 * for 'drain' as a careful writer does; the other receives them and touches one byte per chunk
 * received, as the stream reader does. No framing, no protocol: the floor for moving bytes
 * between two Node processes without shared memory (a copy into the kernel and one out of it).
 */
import * as net from 'node:net';
import type { StreamRun } from './stream-client';
import { collectGarbage, serveCommands } from '../lib/serve-commands';

let server: net.Server | undefined;
let received: Promise<StreamRun> | undefined;

const commands = {
  /** Receiver: listens on `socket`; `receive` later resolves with what the first connection sent. */
  listen({ socket, bytes }: { socket: string; bytes: number }): Promise<void> {
    collectGarbage();
    received = new Promise<StreamRun>((resolve, reject) => {
      server = net.createServer((connection) => {
        let total = 0;
        let chunks = 0;
        let checksum = 0;
        let started: bigint | undefined;
        connection.on('data', (chunk: Buffer) => {
          started ??= process.hrtime.bigint();
          checksum += chunk[chunk.length - 1];
          total += chunk.length;
          chunks++;
          if (total < bytes) return;
          const elapsedNs = Number(process.hrtime.bigint() - started);
          connection.end();
          if (checksum !== chunks * 0x5a) reject(new Error('socket bytes differ from what was written'));
          else resolve({ bytes: total, chunks, elapsedNs });
        });
        connection.on('error', reject);
      });
    });
    return new Promise((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(socket, () => resolve());
    });
  },

  async receive(_args: Record<string, never>): Promise<StreamRun> {
    const run = await received!;
    server!.close();
    return run;
  },

  async send({
    socket,
    chunkBytes,
    chunks,
  }: {
    socket: string;
    chunkBytes: number;
    chunks: number;
  }): Promise<StreamRun> {
    collectGarbage();
    const connection = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socket, () => resolve(s));
      s.once('error', reject);
    });
    const chunk = Buffer.alloc(chunkBytes, 0x5a);
    const started = process.hrtime.bigint();
    for (let i = 0; i < chunks; i++) {
      if (!connection.write(chunk)) await new Promise((resolve) => connection.once('drain', resolve));
    }
    await new Promise<void>((resolve) => connection.end(resolve));
    const elapsedNs = Number(process.hrtime.bigint() - started);
    return { bytes: chunkBytes * chunks, chunks, elapsedNs };
  },
};

export type SocketCopyCommands = typeof commands;

if (require.main === module) serveCommands(commands);
