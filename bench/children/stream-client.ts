/**
 * A stream writer or reader in its own process. The writer copies a prepared 1 MiB-style chunk
 * into each new chunk (what any producer pays); the reader touches one byte per chunk, since
 * zero-copy reading means there is nothing else to pay for. The client is connected at the first
 * call and kept, so a second call measures a warm process (code compiled, segments mapped and
 * their pages touched) and the first a cold one.
 */
import type { TrellisClient } from '../../src/index';
import { collectGarbage, serveCommands } from '../lib/serve-commands';
import { loadTrellis } from '../lib/dist';

const { connect } = loadTrellis();

export interface StreamRun {
  bytes: number;
  chunks: number;
  elapsedNs: number;
  /** CPU time (user + system) this process spent on the run, in microseconds. */
  cpuUs?: number;
  /** Minor page faults this process took during the run (first touches of shared memory among them). */
  minorFaults?: number;
}

/** CPU microseconds since `since` (process.cpuUsage()). */
function cpuSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

const minorFaults = () => process.resourceUsage().minorPageFault;

let connected: { socket: string; client: Promise<TrellisClient> } | undefined;

function clientFor(socket: string): Promise<TrellisClient> {
  if (connected?.socket !== socket) connected = { socket, client: connect(socket) };
  return connected.client;
}

const commands = {
  async write({
    socket,
    id,
    chunkBytes,
    chunks,
  }: {
    socket: string;
    id: string;
    chunkBytes: number;
    chunks: number;
  }): Promise<StreamRun> {
    collectGarbage();
    const client = await clientFor(socket);
    const writer = await client.openWriter(id);
    const chunk = Buffer.alloc(chunkBytes, 0x5a);
    const faults = minorFaults();
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    for (let i = 0; i < chunks; i++) await writer.write(chunk);
    await writer.finish();
    const elapsedNs = Number(process.hrtime.bigint() - started);
    return { bytes: chunkBytes * chunks, chunks, elapsedNs, cpuUs: cpuSince(cpu), minorFaults: minorFaults() - faults };
  },

  async read({ socket, id }: { socket: string; id: string }): Promise<StreamRun> {
    collectGarbage();
    const client = await clientFor(socket);
    const faults = minorFaults();
    const cpu = process.cpuUsage();
    const reader = await client.openReader(id);
    let bytes = 0;
    let chunks = 0;
    let checksum = 0;
    let started: bigint | undefined;
    for await (const chunk of reader) {
      started ??= process.hrtime.bigint();
      const buffer = chunk as Buffer;
      checksum += buffer[buffer.length - 1];
      bytes += buffer.length;
      chunks++;
    }
    const elapsedNs = Number(process.hrtime.bigint() - (started ?? process.hrtime.bigint()));
    if (checksum !== chunks * 0x5a) throw new Error('stream bytes differ from what was written');
    return { bytes, chunks, elapsedNs, cpuUs: cpuSince(cpu), minorFaults: minorFaults() - faults };
  },

  /** A new ByteStream's id, made by this process's build (an A/B run has a daemon of each build). */
  async create({ socket }: { socket: string }): Promise<string> {
    const client = await clientFor(socket);
    return (await client.createStream('trellis::ByteStream')).id;
  },

  /** Requests the daemon has answered so far, this one included. */
  async requests({ socket }: { socket: string }): Promise<number> {
    return (await (await clientFor(socket)).status()).requests;
  },
};

export type StreamClientCommands = typeof commands;

if (require.main === module) serveCommands(commands);
