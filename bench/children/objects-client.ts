/**
 * Typed objects in their own process: `node objects-client.ts [--socket PATH] [--redis PORT]`.
 * One script for every driver of the objects suite (trellis, an Arrow IPC file in /dev/shm,
 * Redis), so that each comparison runs the same workload code; each trial is a fresh process,
 * and a put-rate comparison runs trellis and Redis in the same process, interleaved.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import Redis from 'ioredis';
import { Packr } from 'msgpackr';
import type { TrellisClient } from '../../src/index';
import { checkBenchTable, makeBenchTable, tableBytes, touchEveryPage, valueBuffers } from '../lib/arrow-table';
import { sample, sampleOnce, type SampleSet } from '../lib/sampler';
import { collectGarbage, serveCommands } from '../lib/serve-commands';
import { loadTrellis } from '../lib/dist';

const { connect, isTrellisError } = loadTrellis();

/** Encoded as trellis::Value encodes (src/types/value.ts), so Redis stores the very same bytes. */
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** A small plain record whose msgpack encoding is `bytes` long (from about 100 B up). */
export function benchValue(i: number, bytes: number): Record<string, unknown> {
  const base = {
    id: i,
    user: `user-${i % 997}`,
    ts: 1_700_000_000_000 + i,
    score: i / 7,
    active: i % 3 === 0,
    tags: ['a', 'bc'],
    note: '',
  };
  const room = bytes - packr.pack(base).length;
  if (room < 0) throw new Error(`a bench value cannot be as small as ${bytes} bytes`);
  // The string's header grows from 1 to 2 bytes past 31 characters and to 3 past 255.
  let note = 'x'.repeat(room);
  while (note.length > 0 && packr.pack({ ...base, note }).length > bytes) note = note.slice(1);
  return { ...base, note };
}

/** Written by reads so that no read can be optimized away. */
let sink = 0;

export interface StoreTableArgs {
  /** Bytes of column data. */
  bytes: number;
  /** Put it in trellis (when the DataFrame type exists). */
  trellis: boolean;
  /** Write it as an Arrow IPC file here. */
  ipcFile: string;
  /** SET its IPC bytes under this key, when the bytes fit `redisMaxValueBytes`. */
  redisKey: string;
  redisMaxValueBytes: number;
}

export interface StoreTableResult {
  rows: number;
  tableBytes: number;
  tableId?: string;
  ipcBytes: number;
  /** Rows of the table whose IPC bytes went to Redis: all of them unless the value limit was lower. */
  redisRows: number;
  redisBytes: number;
  /** Milliseconds, each the first (and only) time in this process. */
  ms: {
    build: number;
    trellisPut?: number;
    ipcEncode: number;
    ipcWrite: number;
    redisSet: number;
    redisEncode?: number;
  };
}

export interface TrellisGetArgs {
  valueId: string;
  tableId?: string;
  rows: number;
  valueGets: { iterations: number; warmup: number };
  tableGets: { iterations: number; warmup: number };
  /** Value and table gets alternate this many times, pooled, so drift hits both alike. */
  rounds: number;
}

export interface TrellisGetResult {
  firstRequest: SampleSet;
  valueFirst: SampleSet;
  valueSteady: SampleSet[];
  table?: {
    first: SampleSet;
    steady: SampleSet[];
    firstTouch: SampleSet;
    secondTouch: SampleSet;
    /** Every values buffer of the got table lies in trellis shared memory. */
    zeroCopy: boolean;
    typename: string;
  };
}

export interface BaselineReadArgs {
  rows: number;
  iterations: number;
  warmup: number;
}

export interface BaselineReadResult {
  /** Whole operation: bytes in, then a Table. */
  total: SampleSet;
  /** Median ms of the two phases over the timed samples. */
  fetchMs: number;
  decodeMs: number;
  /** The table came out over the fetched bytes rather than over a copy of them. */
  zeroCopyDecode: boolean;
  /** Reading a byte of every page after the first load (already in this process's heap). */
  touch: SampleSet;
}

export interface PutRateArgs {
  valueBytes: number;
  /** Values put one at a time per timed sample. */
  single: { iterations: number; warmup: number; opsPerSample: number };
  /** Batches: `batchSize` values per operation. */
  batch: { iterations: number; warmup: number; batchSize: number };
  /** All drivers run once per round, in turn; samples are pooled over rounds. */
  rounds: number;
}

export type PutDriver =
  | 'trellis put'
  | 'redis SET'
  | 'trellis putMany'
  | 'trellis put, all in flight'
  | 'redis MSET'
  | 'redis pipeline of SETs';

export interface PutRateResult {
  encodedBytes: number;
  /** ns per value, samples pooled over rounds, per driver. */
  drivers: Record<PutDriver, SampleSet[]>;
  batchSize: number;
}

function parseArgs(argv: string[]): { socket?: string; redisPort?: number } {
  const options: { socket?: string; redisPort?: number } = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--socket') options.socket = argv[i + 1];
    else if (argv[i] === '--redis') options.redisPort = Number(argv[i + 1]);
    else throw new Error(`objects-client: unknown argument ${argv[i]}`);
  }
  return options;
}

function objectCommands(trellis: TrellisClient | undefined, redis: Redis | undefined) {
  const needTrellis = () => {
    if (!trellis) throw new Error('objects-client: started without --socket');
    return trellis;
  };
  const needRedis = () => {
    if (!redis) throw new Error('objects-client: started without --redis');
    return redis;
  };

  return {
    /** Whether put(table) makes a DataFrame that get() gives back as a Table over shared memory. */
    async probeDataFrame(): Promise<{ available: boolean; reason?: string; typename?: string }> {
      const client = needTrellis();
      const table = makeBenchTable(4096 * 32);
      let id: string;
      try {
        id = await client.put(table);
      } catch (error) {
        if (isTrellisError(error) && error.code === 'TypeMismatch')
          return { available: false, reason: `put(table) threw TypeMismatch: ${error.message}` };
        throw error;
      }
      const typename = (await client.getMeta(id)).typename;
      const got: unknown = await client.get(id);
      const available = got instanceof Table;
      await client.release(id);
      await client.delete(id);
      return available
        ? { available, typename }
        : { available, typename, reason: `get of a ${typename} did not return an arrow Table` };
    },

    async storeValue({ bytes }: { bytes: number }): Promise<{ id: string; encodedBytes: number }> {
      const value = benchValue(0, bytes);
      const id = await needTrellis().put(value);
      return { id, encodedBytes: packr.pack(value).length };
    },

    /** Builds the table once and stores it every way the readers will load it. */
    async storeTable(args: StoreTableArgs): Promise<StoreTableResult> {
      const ms = (start: number) => performance.now() - start;
      let start = performance.now();
      const table = makeBenchTable(args.bytes);
      const result: StoreTableResult = {
        rows: table.numRows,
        tableBytes: tableBytes(table),
        ipcBytes: 0,
        redisRows: 0,
        redisBytes: 0,
        ms: { build: ms(start), ipcEncode: 0, ipcWrite: 0, redisSet: 0 },
      };
      if (args.trellis) {
        start = performance.now();
        result.tableId = await needTrellis().put(table);
        result.ms.trellisPut = ms(start);
      }
      start = performance.now();
      let ipc: Uint8Array | undefined = tableToIPC(table, 'file');
      result.ms.ipcEncode = ms(start);
      result.ipcBytes = ipc.byteLength;
      start = performance.now();
      fs.writeFileSync(args.ipcFile, ipc);
      result.ms.ipcWrite = ms(start);

      let redisTable = table;
      if (ipc.byteLength > args.redisMaxValueBytes) {
        // The largest whole-row prefix whose IPC bytes Redis accepts (headers take a few KiB).
        const rows = Math.floor((table.numRows * (args.redisMaxValueBytes - 1024 * 1024)) / ipc.byteLength);
        // eslint-disable-next-line no-useless-assignment -- drops the big encoding before the collection
        ipc = undefined;
        collectGarbage();
        redisTable = makeBenchTable(rows * (result.tableBytes / table.numRows));
        start = performance.now();
        ipc = tableToIPC(redisTable, 'file');
        result.ms.redisEncode = ms(start);
      }
      result.redisRows = redisTable.numRows;
      result.redisBytes = ipc.byteLength;
      start = performance.now();
      await needRedis().set(args.redisKey, Buffer.from(ipc.buffer, ipc.byteOffset, ipc.byteLength));
      result.ms.redisSet = ms(start);
      return result;
    },

    /** Fresh reader: gets of ids it does not hold (each released after, untimed), value and table in turn. */
    async getFromTrellis(args: TrellisGetArgs): Promise<TrellisGetResult> {
      const client = needTrellis();
      collectGarbage();
      const firstRequest = await sampleOnce(() => client.exists(args.valueId));
      // Warms the request path, so the first gets below measure what is new about them.
      for (let i = 0; i < 100; i++) await client.exists(args.valueId);
      const valueFirst = await sampleOnce(() => client.get(args.valueId));
      await client.release(args.valueId);

      let table: TrellisGetResult['table'];
      if (args.tableId) {
        const tableId = args.tableId;
        let got: Table | undefined;
        const first = await sampleOnce(async () => {
          got = (await client.get(tableId)) as Table;
        });
        if (!(got instanceof Table)) throw new Error(`get(${tableId}) did not return an arrow Table`);
        const zeroCopy = valueBuffers(got).every((buffer) => client.isSharedMemory(buffer));
        const firstTouch = await sampleOnce(() => void (sink += touchEveryPage(got!)));
        const secondTouch = await sampleOnce(() => void (sink += touchEveryPage(got!)));
        checkBenchTable(got, args.rows);
        got = undefined;
        await client.release(tableId);
        table = {
          first,
          steady: [],
          firstTouch,
          secondTouch,
          zeroCopy,
          typename: (await client.getMeta(tableId)).typename,
        };
      }

      const valueSteady: SampleSet[] = [];
      for (let round = 0; round < args.rounds; round++) {
        valueSteady.push(
          await sample(() => client.get(args.valueId), {
            ...args.valueGets,
            after: () => client.release(args.valueId),
          }),
        );
        if (table && args.tableId) {
          const tableId = args.tableId;
          table.steady.push(
            await sample(() => client.get(tableId), { ...args.tableGets, after: () => client.release(tableId) }),
          );
        }
      }
      return { firstRequest, valueFirst, valueSteady, table };
    },

    /**
     * readFileSync + tableFromIPC of the IPC file, in a fresh process; each table dropped
     * (untimed) before the next. Node has no mmap, so this is the fastest a Node process loads
     * an Arrow IPC file: one copy into the heap, then arrow builds the table over that copy
     * without another (a fresh buffer is 8-byte aligned).
     */
    async readFromFile({
      file,
      rows,
      iterations,
      warmup,
    }: BaselineReadArgs & { file: string }): Promise<BaselineReadResult> {
      return loadRepeatedly(() => fs.readFileSync(file), rows, iterations, warmup);
    },

    /** GET of the IPC bytes (as a Buffer) + tableFromIPC, in a fresh process. */
    async getFromRedis({
      key,
      rows,
      iterations,
      warmup,
    }: BaselineReadArgs & { key: string }): Promise<BaselineReadResult> {
      const client = needRedis();
      return loadRepeatedly(
        async () => {
          const bytes = await client.getBuffer(key);
          if (!bytes) throw new Error(`redis has no key ${key}`);
          return bytes;
        },
        rows,
        iterations,
        warmup,
      );
    },

    /** Puts per second of small plain values: trellis and Redis from this one process, interleaved. */
    async putRate(args: PutRateArgs): Promise<PutRateResult> {
      const client = needTrellis();
      const kv = needRedis();
      const poolSize = Math.max(args.batch.batchSize, 1000);
      const values = Array.from({ length: poolSize }, (_, i) => benchValue(i, args.valueBytes));
      const encodedBytes = packr.pack(values[0]).length;
      const pick = (i: number) => values[i % poolSize];
      let keySerial = 0;
      const key = () => `v:${keySerial++}`;
      const made: string[] = [];
      const deleteMade = async () => {
        await client.delete(made.splice(0));
      };
      const flush = async () => {
        await kv.flushdb();
      };
      const batchOf = (i: number) =>
        Array.from({ length: args.batch.batchSize }, (_, j) => pick(i * args.batch.batchSize + j));

      const drivers: Record<PutDriver, () => Promise<SampleSet>> = {
        'trellis put': () =>
          sample(async (i) => void made.push(await client.put(pick(i))), { ...args.single, after: deleteMade }),
        // What a user does: encode, then SET under a fresh key.
        'redis SET': () => sample((i) => kv.set(key(), packr.pack(pick(i))), { ...args.single, after: flush }),
        'trellis putMany': () =>
          perValue(
            sample(async (i) => void made.push(...(await client.putMany(batchOf(i)))), {
              ...args.batch,
              after: deleteMade,
            }),
            args.batch.batchSize,
          ),
        // A batch of plain puts issued together: the client sends them without waiting, like a pipeline.
        'trellis put, all in flight': () =>
          perValue(
            sample(async (i) => void made.push(...(await Promise.all(batchOf(i).map((value) => client.put(value))))), {
              ...args.batch,
              after: deleteMade,
            }),
            args.batch.batchSize,
          ),
        'redis MSET': () =>
          perValue(
            sample(
              (i) => {
                const pairs: Array<string | Buffer> = [];
                for (const value of batchOf(i)) pairs.push(key(), packr.pack(value));
                return kv.mset(pairs);
              },
              { ...args.batch, after: flush },
            ),
            args.batch.batchSize,
          ),
        'redis pipeline of SETs': () =>
          perValue(
            sample(
              (i) => {
                const pipeline = kv.pipeline();
                for (const value of batchOf(i)) pipeline.set(key(), packr.pack(value));
                return pipeline.exec();
              },
              { ...args.batch, after: flush },
            ),
            args.batch.batchSize,
          ),
      };
      const results = Object.fromEntries(Object.keys(drivers).map((name) => [name, [] as SampleSet[]])) as Record<
        PutDriver,
        SampleSet[]
      >;
      for (let round = 0; round < args.rounds; round++) {
        for (const [name, run] of Object.entries(drivers) as Array<[PutDriver, () => Promise<SampleSet>]>) {
          collectGarbage();
          results[name].push(await run());
        }
      }
      return { encodedBytes, drivers: results, batchSize: args.batch.batchSize };
    },

    async deleteObjects({ ids }: { ids: string[] }): Promise<void> {
      await needTrellis().delete(ids);
    },

    status() {
      return needTrellis().status();
    },
  };
}

/** A batch's sample is the time for `batchSize` values: divide, so every row reads as ns per value. */
async function perValue(pending: Promise<SampleSet>, batchSize: number): Promise<SampleSet> {
  const set = await pending;
  return { ...set, samplesNs: set.samplesNs.map((ns) => ns / batchSize), opsPerSample: set.opsPerSample * batchSize };
}

/**
 * Loads the table `warmup + iterations` times: fetch the bytes, then decode them, each table
 * dropped and collected (untimed) before the next load so two never sit in memory together.
 */
async function loadRepeatedly(
  fetch: () => Buffer | Promise<Buffer>,
  rows: number,
  iterations: number,
  warmup: number,
): Promise<BaselineReadResult> {
  collectGarbage();
  const phases: Array<{ fetch: number; decode: number }> = [];
  let table: Table | undefined;
  let zeroCopyDecode = true;
  const load = async () => {
    const start = performance.now();
    const bytes = await fetch();
    const fetched = performance.now();
    table = tableFromIPC(bytes);
    phases.push({ fetch: fetched - start, decode: performance.now() - fetched });
    zeroCopyDecode &&= valueBuffers(table).every((buffer) => buffer.buffer === bytes.buffer);
  };
  const drop = () => {
    table = undefined;
    collectGarbage();
  };
  await load();
  checkBenchTable(table!, rows);
  const touch = await sampleOnce(() => void (sink += touchEveryPage(table!)));
  drop();
  const total = await sample(load, { iterations, warmup, after: drop });
  const timed = phases.slice(-iterations);
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  return {
    total,
    fetchMs: median(timed.map((p) => p.fetch)),
    decodeMs: median(timed.map((p) => p.decode)),
    zeroCopyDecode,
    touch,
  };
}

export type ObjectsClientCommands = ReturnType<typeof objectCommands>;

async function main(): Promise<void> {
  const { socket, redisPort } = parseArgs(process.argv.slice(2));
  const trellis = socket === undefined ? undefined : await connect(socket);
  const redis =
    redisPort === undefined
      ? undefined
      : new Redis({ host: '127.0.0.1', port: redisPort, lazyConnect: true, maxRetriesPerRequest: 0 });
  await redis?.connect();
  // Keeps the bench's own variable alive for the optimizer's sake.
  process.on('exit', () => void sink);
  serveCommands(objectCommands(trellis, redis));
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`objects-client: ${error.stack ?? error.message}\n`);
    process.exit(1);
  });
}
