/**
 * A ShareableList client in its own process: `node shareable-list-client.ts SOCKET`. One
 * process creates and freezes the list; a fresh one reads it, so the first read pays what a
 * real reader pays (the open round trip, mapping, first touch of the pages, decoding, JIT).
 */
import * as v8 from 'node:v8';
import type { Client, ShareableList as List } from '../../src/index';
import { sample, sampleOnce, type SampleSet } from '../lib/sampler';
import { collectGarbage, serveCommands } from '../lib/serve-commands';
import { loadTrellis } from '../lib/dist';
import { decodeEveryItem } from './shareable-list-floor';

const { connect, ShareableList } = loadTrellis();
type ShareableList = List;

type Item = Buffer | string | number | bigint | boolean | null;

/** Item i of the benchmark list: a mix like a real table row's, mostly short values. */
export function benchItem(i: number): Item {
  switch (i % 8) {
    case 0:
      return `user-${i}`;
    case 1:
      return i * 31;
    case 2:
      return i / 3;
    case 3:
      return i % 3 === 0;
    case 4:
      return `a somewhat longer ascii string, number ${i}`;
    case 5:
      return Buffer.from([i & 0xff, (i >> 8) & 0xff, 7, 9]);
    case 6:
      return `grüße ${i}`;
    default:
      return i % 16 === 7 ? null : 2n ** 60n + BigInt(i);
  }
}

function benchItems(count: number): Item[] {
  return Array.from({ length: count }, (_, i) => benchItem(i));
}

/** Written by every pass so that no read can be optimized away. */
let sink = 0;
/** Items made only to put a list reader in the array side's state (FirstReadArgs.sameStateAsArray). */
let kept: Item[] = [];

function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

/** Touches each item the way a caller would: a string's length, a number's value. */
function consume(item: Item): void {
  if (typeof item === 'string') sink += item.length;
  else if (typeof item === 'number') sink += item;
  else if (item === true) sink += 1;
  else if (item !== null && typeof item === 'object') sink += item.length;
  else if (typeof item === 'bigint') sink += 2;
}

function readList(list: ShareableList): void {
  for (let i = 0; i < list.length; i++) consume(list.get(i) as Item);
}

function readArray(items: readonly Item[]): void {
  for (let i = 0; i < items.length; i++) consume(items[i]);
}

export interface ReadArgs {
  name: string;
  count: number;
  iterations: number;
  warmup: number;
}

export interface FirstReadResult {
  /**
   * The first open in this process (after one status request, which counts requests): fd passing,
   * mapping, cold JIT.
   */
  firstOpen: SampleSet;
  /** Requests the daemon answered for that open (see countRequests). */
  firstOpenRequests: number;
  /**
   * The first full pass after it (a full GC in between, untimed, as before arrayFirst's pass):
   * first touch of the pages, decoding, a cold JIT.
   */
  firstPass: SampleSet;
  /** CPU time of this process (every thread: V8 compiles and collects on helpers) during firstPass, ms. */
  firstPassCpuMs: number;
}

export interface FirstReadArgs {
  name: string;
  /**
   * Make (and keep) this many bench items first, untimed, as arrayFirst does before its pass: the
   * process then starts the pass in the array side's state (a heap grown for the items, the
   * compiler's memory in use once), so only the reading differs.
   */
  sameStateAsArray?: number;
}

export interface ReadResult extends FirstReadResult {
  /** Later passes over the same list: items come from its cache, filled as it was read again. */
  cachedPass: SampleSet;
  /** Passes over a new list object each time (after JIT warmup): every item decoded from shared memory. */
  decodingPass: SampleSet;
  /** The same pass over a plain JS array of the same items, built in this process. */
  arrayPass: SampleSet;
  sink: number;
}

export interface OpenArgs {
  name: string;
  iterations: number;
  warmup: number;
}

function listCommands(client: Client) {
  async function firstOpenAndPass(
    name: string,
    sameStateAsArray = 0,
  ): Promise<FirstReadResult & { list: ShareableList }> {
    if (sameStateAsArray > 0) kept = benchItems(sameStateAsArray);
    let list: ShareableList | undefined;
    let firstOpen: SampleSet | undefined;
    const firstOpenRequests = await countRequests(client, async () => {
      firstOpen = await sampleOnce(async () => {
        list = await ShareableList.open(client, name);
      });
    });
    // As before the array's first pass (arrayFirst): the pass starts with an empty young
    // generation, so neither side's timing includes collecting what came before it.
    collectGarbage();
    const cpuBefore = process.cpuUsage();
    const firstPass = await sampleOnce(() => readList(list!));
    const firstPassCpuMs = cpuMs(process.cpuUsage(cpuBefore));
    sink += kept.length;
    return { list: list!, firstOpen: firstOpen!, firstOpenRequests, firstPass, firstPassCpuMs };
  }

  return {
    async create({ count }: { count: number }): Promise<{ name: string; bytes: number }> {
      const list = await ShareableList.create(client, benchItems(count));
      await list.freeze();
      const blob = await client.getBlob(list.name);
      return { name: list.name, bytes: blob.size };
    },

    /** The first open and first pass in this process only: one cold sample. */
    async firstRead({ name, sameStateAsArray }: FirstReadArgs): Promise<FirstReadResult> {
      const { list: _, ...first } = await firstOpenAndPass(name, sameStateAsArray);
      return first;
    },

    async read({ name, count, iterations, warmup }: ReadArgs): Promise<ReadResult> {
      const { list, firstOpen, firstOpenRequests, firstPass, firstPassCpuMs } = await firstOpenAndPass(name);
      const cachedPass = await sample(() => readList(list), { iterations, warmup });
      const blob = await client.getBlob(name);
      let fresh = ShareableList.fromBlob(client, blob);
      const decodingPass = await sample(() => readList(fresh), {
        iterations,
        warmup,
        after: () => (fresh = ShareableList.fromBlob(client, blob)),
      });

      collectGarbage();
      const items = benchItems(count);
      const arrayPass = await sample(() => readArray(items), { iterations, warmup });
      return { firstOpen, firstOpenRequests, firstPass, firstPassCpuMs, cachedPass, decodingPass, arrayPass, sink };
    },

    /**
     * The alternative to sharing: the items arrive as bytes (v8.serialize, made untimed) and are
     * copied into this process's heap. Timed like firstOpen + firstPass: the first deserialize and
     * pass in a fresh process.
     */
    async copyFirst({ count }: { count: number }): Promise<{ firstDeserializeAndRead: SampleSet; sink: number }> {
      const serialized = v8.serialize(benchItems(count));
      collectGarbage();
      const firstDeserializeAndRead = await sampleOnce(() => readArray(v8.deserialize(serialized) as Item[]));
      return { firstDeserializeAndRead, sink };
    },

    /**
     * The baseline for a fresh reader's first pass: the first pass over a plain JS array of the
     * same items (made untimed) in a fresh process, so with the same cold JIT.
     */
    async arrayFirst({
      count,
    }: {
      count: number;
    }): Promise<{ firstArrayPass: SampleSet; firstArrayPassCpuMs: number; sink: number }> {
      const items = benchItems(count);
      collectGarbage();
      const cpuBefore = process.cpuUsage();
      const firstArrayPass = await sampleOnce(() => readArray(items));
      return { firstArrayPass, firstArrayPassCpuMs: cpuMs(process.cpuUsage(cpuBefore)), sink };
    },

    /**
     * The floor for the list's first pass in JS: the list's blob got as open gets it (the same
     * mapping, the same first touch), then every item decoded by one hand-written loop
     * (shareable-list-floor.ts). Timed as firstRead's pass.
     */
    async floorFirst({
      name,
    }: {
      name: string;
    }): Promise<{ firstFloorPass: SampleSet; firstFloorPassCpuMs: number; sink: number }> {
      const blob = await client.getBlob(name);
      collectGarbage();
      const cpuBefore = process.cpuUsage();
      const firstFloorPass = await sampleOnce(() => decodeEveryItem(blob.buffer, consume));
      return { firstFloorPass, firstFloorPassCpuMs: cpuMs(process.cpuUsage(cpuBefore)), sink };
    },

    /** ShareableList.open with a round trip each time (the reference is dropped after, untimed), and a bare request. */
    async open({
      name,
      iterations,
      warmup,
    }: OpenArgs): Promise<{ open: SampleSet; roundTrip: SampleSet; openRequests: number }> {
      const open = await sample(() => ShareableList.open(client, name), {
        iterations,
        warmup,
        after: () => client.release(name),
      });
      const roundTrip = await sample(() => client.exists(name), { iterations, warmup });
      const openRequests = await countRequests(client, () => ShareableList.open(client, name));
      await client.release(name);
      return { open, roundTrip, openRequests };
    },
  };
}

/**
 * How many requests `operation` sent, from the daemon's own count (status().requests), with
 * nothing else talking to the daemon meanwhile. Whether or not the count includes the status
 * request asking, the difference between two statuses is the operation's requests plus one.
 */
async function countRequests(client: Client, operation: () => Promise<unknown>): Promise<number> {
  const before = (await client.status()).requests;
  await operation();
  return (await client.status()).requests - before - 1;
}

export type ShareableListCommands = ReturnType<typeof listCommands>;

async function main(): Promise<void> {
  const client = await connect(process.argv[2]);
  serveCommands(listCommands(client));
}

if (require.main === module) void main();
