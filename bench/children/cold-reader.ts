/**
 * A fresh process's first read, in its own process: `node cold-reader.ts [--socket PATH]`. The
 * runner starts one of these per measurement, so every "first" below is the first in a new
 * process. apache-arrow is imported at the top, before anything is timed, in every role: the
 * trellis reader and the Arrow IPC file reader pay the same module load outside the timings.
 * What is timed is from the call to a ready value (a Table, a Buffer), then its first scan.
 *
 * trellis is loaded from dist/, the compiled package a user's process loads (see lib/dist.ts and
 * lib/child-main.js): trellis loads some of its modules at first use (the arrow layout at the
 * first DataFrame get), inside these timings, as a user's process loads them.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Table, tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import type * as Trellis from '../../src/index';
import type * as Native from '../../src/native';
import { touchEveryPage, valueBuffers } from '../lib/arrow-table';
import { serveCommands } from '../lib/serve-commands';
import { loadDist, loadTrellis } from '../lib/dist';

const PAGE = 4096;

const dist = loadTrellis();
const { native } = loadDist<typeof Native>('native');

/** Written by reads so that no read can be optimized away. */
let sink = 0;

export interface StoreArgs {
  tableBytes: number;
  smallBlobBytes: number;
  /** 0: no large blob (its id is then ''). */
  largeBlobBytes: number;
  /** The same table as an Arrow IPC file here; none when not given (an A/B run has no baseline). */
  ipcFile?: string;
}

export interface StoreResult {
  tableId: string;
  smallBlobId: string;
  largeBlobId: string;
  rows: number;
  ipcBytes: number;
}

/** Milliseconds. */
export interface FirstRead {
  /** The first get (or open + map + decode) in this process, to a ready value. */
  first: number;
  /**
   * This process's CPU time (user + system) over `first`: what the reader itself spent, without
   * the waits for the daemon or for a CPU, which a loaded machine stretches.
   */
  firstCpu: number;
  /** The same again in the same process: what a warm process pays. */
  warm: number;
  /** One byte of every 4 KiB page of the value, the first time. */
  firstScan: number;
  /** The same scan again, the pages now mapped. */
  secondScan: number;
  /** Every values buffer lies in the mapping (trellis shared memory, or the mapped file). */
  zeroCopy: boolean;
  /**
   * trellis readers: the connect() this process made before anything else was timed, and its CPU
   * time; what a user's process pays before its first get (work moved into connect shows here).
   */
  connect?: number;
  connectCpu?: number;
  /** trellis readers: requests this process made for its first get (0: answered in the process). */
  firstRequests?: number;
}

function time<T>(op: () => T): [T, number] {
  const start = performance.now();
  const value = op();
  return [value, performance.now() - start];
}

async function timeAsync<T>(op: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await op();
  return [value, performance.now() - start];
}

/** Milliseconds of this process's CPU time since `since` (a process.cpuUsage()). */
function cpuSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}
// Run once before anything is timed: the first call of each compiles it (and Node's checks of the
// argument), which would otherwise be counted in the first read it measures.
cpuSince(process.cpuUsage());
performance.now();

function scanBytes(bytes: Uint8Array): number {
  let sum = 0;
  for (let offset = 0; offset < bytes.length; offset += PAGE) sum += bytes[offset];
  return sum;
}

function scans(scan: () => number): { firstScan: number; secondScan: number } {
  const [first, firstScan] = time(scan);
  const [second, secondScan] = time(scan);
  sink += first + second;
  return { firstScan, secondScan };
}

/** The connect() of this process, timed in main(); undefined for the baseline readers. */
interface Connected {
  client: Trellis.TrellisClient;
  connect: number;
  connectCpu: number;
}

/** Requests this process has sent so far: the client's next sequence number, less one. */
function requestsSent(client: Trellis.TrellisClient): number | undefined {
  const channel = (client as unknown as { rawChannel?: { nextSeq?: unknown } }).rawChannel;
  return typeof channel?.nextSeq === 'number' ? channel.nextSeq - 1 : undefined;
}

function coldCommands(connected: Connected | undefined) {
  const trellis = connected?.client;
  const needTrellis = () => {
    if (!trellis) throw new Error('cold-reader: started without --socket');
    return trellis;
  };
  return {
    /** The writer: a table of two float64 columns (as a user's numeric frame), two blobs, the IPC file. */
    async store(args: StoreArgs): Promise<StoreResult> {
      const client = needTrellis();
      const rows = Math.floor(args.tableBytes / 16);
      const price = new Float64Array(rows);
      const score = new Float64Array(rows);
      for (let i = 0; i < rows; i++) {
        price[i] = 100 + (i % 1000) / 8;
        score[i] = i / rows;
      }
      const table = tableFromArrays({ price, score });
      const tableId = await client.put(table);
      const ipc = args.ipcFile === undefined ? undefined : tableToIPC(table, 'file');
      if (ipc) fs.writeFileSync(args.ipcFile!, ipc);
      const blob = async (bytes: number) => {
        const writer = await client.createBlob(bytes);
        writer.buffer.fill(1);
        return writer.seal();
      };
      return {
        tableId,
        smallBlobId: await blob(args.smallBlobBytes),
        largeBlobId: args.largeBlobBytes > 0 ? await blob(args.largeBlobBytes) : '',
        rows,
        ipcBytes: ipc?.byteLength ?? 0,
      };
    },

    /** client.get of a DataFrame: the first in this process, then again. */
    async table({ id }: { id: string }): Promise<FirstRead> {
      const client = needTrellis();
      const before = requestsSent(client);
      // Timed inline: a closure passed to timeAsync would be compiled at its first call, inside the window.
      const cpu = process.cpuUsage();
      const start = performance.now();
      const table = await client.get(id);
      const first = performance.now() - start;
      const firstCpu = cpuSince(cpu);
      const after = requestsSent(client);
      if (!(table instanceof Table)) throw new Error(`object ${id} did not come back as an arrow Table`);
      const [, warm] = await timeAsync(() => client.get(id));
      const zeroCopy = valueBuffers(table).every((buffer) => client.isSharedMemory(buffer));
      const firstRequests = before === undefined || after === undefined ? undefined : after - before;
      return { first, firstCpu, warm, zeroCopy, firstRequests, ...scans(() => touchEveryPage(table)) };
    },

    /** getBlob (a Buffer over shared memory): the first in this process, then again. */
    async blob({ id }: { id: string }): Promise<FirstRead> {
      const client = needTrellis();
      const before = requestsSent(client);
      const cpu = process.cpuUsage();
      const start = performance.now();
      const { buffer: bytes } = await client.getBlob(id);
      const first = performance.now() - start;
      const firstCpu = cpuSince(cpu);
      const after = requestsSent(client);
      const [, warm] = await timeAsync(() => client.getBlob(id));
      return {
        first,
        firstCpu,
        warm,
        zeroCopy: client.isSharedMemory(bytes),
        connect: connected?.connect,
        connectCpu: connected?.connectCpu,
        firstRequests: before === undefined || after === undefined ? undefined : after - before,
        ...scans(() => scanBytes(bytes)),
      };
    },

    /**
     * What a user does without trellis and without a copy: open the IPC file, mmap it (Node has
     * no mmap, so through trellis's addon, as an external ArrayBuffer as mmap addons make; or,
     * with `shared`, as the SharedArrayBuffer trellis now maps segments as, which starts no GC)
     * and decode it with tableFromIPC over the mapped bytes.
     */
    ipcFile({ file, shared = false }: { file: string; shared?: boolean }): FirstRead {
      const load = () => {
        const fd = fs.openSync(file, 'r');
        try {
          const size = fs.fstatSync(fd).size;
          const mapping = new native.Mapping(fd, size, false);
          const memory = shared ? mapping.sharedBuffer : mapping.buffer;
          if (!memory) throw new Error('cold-reader: this addon makes no SharedArrayBuffer (see native/mapping.cc)');
          const bytes = new Uint8Array(memory);
          return { bytes, table: tableFromIPC(bytes) };
        } finally {
          fs.closeSync(fd);
        }
      };
      const cpu = process.cpuUsage();
      const [{ bytes, table }, first] = time(load);
      const firstCpu = cpuSince(cpu);
      const [, warm] = time(load);
      const zeroCopy = valueBuffers(table).every((buffer) => buffer.buffer === bytes.buffer);
      return { first, firstCpu, warm, zeroCopy, ...scans(() => touchEveryPage(table)) };
    },

    async deleteObjects({ ids }: { ids: string[] }): Promise<void> {
      await needTrellis().delete(ids);
    },
  };
}

export type ColdReaderCommands = ReturnType<typeof coldCommands>;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const socketAt = args.indexOf('--socket');
  let connected: Connected | undefined;
  if (socketAt >= 0) {
    const cpu = process.cpuUsage();
    const [client, connect] = await timeAsync(() => dist.connect(args[socketAt + 1]));
    connected = { client, connect, connectCpu: cpuSince(cpu) };
  }
  process.on('exit', () => void sink);
  serveCommands(coldCommands(connected));
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`cold-reader: ${error.stack ?? error.message}\n`);
    process.exit(1);
  });
}
