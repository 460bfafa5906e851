/**
 * Small Buffers in their own process:
 * `node small-values-client.ts --socket PATH --redis-socket PATH --echo-socket PATH`.
 * trellis and Redis (over its UNIX socket, through ioredis, as a Node user would reach it) run the
 * same workload from the same process, interleaved round by round, so drift hits both alike.
 * A writer process puts; a different reader process gets what it put.
 */
import type { TrellisClient } from '../../src/index';
import Redis from 'ioredis';
import { sample, sampleOnce, type SampleSet } from '../lib/sampler';
import { connectEcho } from '../lib/echo-client';
import { serveCommands } from '../lib/serve-commands';
import { loadDist, loadTrellis } from '../lib/dist';

const { connect } = loadTrellis();
const { encodeFrame } = loadDist<typeof import('../../src/protocol/framing')>('protocol/framing');

export const PUT_DRIVERS = [
  'raw echo of a put request',
  'trellis put',
  'trellis put over the socket',
  'trellis put, registered',
  'redis SET',
  'trellis tensor put',
  'trellis tensor put, registered',
  "redis SET of a tensor's bytes",
  'trellis put, 100 in flight',
  'redis pipeline of 100 SETs',
  'trellis putMany of 100',
  'redis MSET of 100',
] as const;
export const GET_DRIVERS = [
  'raw echo of a get request',
  'trellis get',
  'trellis get, copy: true',
  'trellis get over the socket',
  'redis GET',
  'trellis tensor get',
  "redis GET of a tensor's bytes",
  'trellis get, 100 in flight',
  'redis pipeline of 100 GETs',
  'trellis getMany of 100',
  'redis MGET of 100',
] as const;
export type PutDriver = (typeof PUT_DRIVERS)[number];
export type GetDriver = (typeof GET_DRIVERS)[number];

export interface RateArgs {
  valueBytes: number;
  /** One at a time: `opsPerSample` operations per timed sample. */
  single: { iterations: number; warmup: number; opsPerSample: number };
  /** In flight and batches: `batchSize` values per timed sample. */
  batch: { iterations: number; warmup: number; batchSize: number };
  rounds: number;
}

export interface PutRateResult {
  /** ns per value, pooled over rounds. */
  drivers: Record<PutDriver, SampleSet[]>;
  /** The first put of this fresh process, each driver's (cold: connection, JIT, first segment). */
  cold: { trellis: SampleSet; redis: SampleSet };
  /** Bytes on the wire of one trellis put request: what the echo baseline sends (and gets back). */
  putFrameBytes: number;
  /** Ids and keys left for a reader to get. */
  ids: string[];
  keys: string[];
  /** Float64Arrays left for the reader: trellis ids, and Redis keys of the same bytes. */
  tensorIds: string[];
  tensorKeys: string[];
  /** Bytes of each Float64Array put (`valueBytes` rounded up to whole elements). */
  tensorBytes: number;
}

/** One fresh process's first put or first get, each driver's; `trellisFirst` says which went first. */
export interface FirstOperationArgs {
  what: 'put' | 'get';
  valueBytes: number;
  /** For a get: an id and a key the writer left. */
  id?: string;
  key?: string;
  trellisFirst: boolean;
}

export interface GetRateResult {
  drivers: Record<GetDriver, SampleSet[]>;
  cold: { trellis: SampleSet; redis: SampleSet };
  getFrameBytes: number;
  /** Every got Buffer held the bytes put. */
  checked: boolean;
  /** The reader's read-index counters at the end (undefined: no index). */
  readIndex?: { hits: number; views?: number; misses: number; raced: number; unmapped: number };
  /** Buffers got without copy that were not views of shared memory (API.md: they all must be). */
  notShared?: number;
}

/** Heap bytes per object this client keeps (retained), by stage; see `retained`. */
export interface RetainedBytes {
  objects: number;
  /** After putting them (ring puts), the ids kept: what the client keeps per object it put. */
  put: number;
  /** After getting each once over the socket (no read index) and dropping the values: what it keeps per object held. */
  heldOverSocket: number;
  /** The same got from the read index (a view pinned by a hold counter). */
  heldFromIndex: number;
  /** After release() of every one: what is left per object. */
  released: number;
}

/** Written by reads so that no read can be optimized away. */
let sink = 0;

async function perValue(pending: Promise<SampleSet>, batch: number): Promise<SampleSet> {
  const set = await pending;
  return { ...set, samplesNs: set.samplesNs.map((ns) => ns / batch), opsPerSample: set.opsPerSample * batch };
}

function payload(i: number, bytes: number): Buffer {
  const buffer = Buffer.alloc(bytes, i & 0xff);
  buffer.writeUInt32LE(i >>> 0, 0);
  return buffer;
}

/** A Float64Array of at least `bytes` bytes (whole elements), its first element `i`. */
function tensorPayload(i: number, bytes: number): Float64Array {
  const tensor = new Float64Array(Math.ceil(bytes / Float64Array.BYTES_PER_ELEMENT)).fill(i & 0xff);
  tensor[0] = i;
  return tensor;
}

/** The bytes of a TypedArray, as Redis is given them. */
const bytesOf = (view: ArrayBufferView) => Buffer.from(view.buffer, view.byteOffset, view.byteLength);

/** A Redis reply's bytes as a Float64Array: in place where aligned, else copied (as a user must). */
function float64sOf(buffer: Buffer): Float64Array {
  const bytes = buffer.byteOffset % 8 === 0 ? buffer : Buffer.from(buffer);
  return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
}

function commands(client: TrellisClient, kv: Redis, echoSocket: string) {
  let socketClient: TrellisClient | undefined;
  let socketPutter: TrellisClient | undefined;
  return {
    async putRate(args: RateArgs & { keep: number }): Promise<PutRateResult> {
      const { valueBytes, batch } = args;
      const pool = Array.from({ length: 1000 }, (_, i) => payload(i, valueBytes));
      const pick = (i: number) => pool[i % pool.length];
      const tensors = Array.from({ length: 1000 }, (_, i) => tensorPayload(i, valueBytes));
      const tensorBytes = tensors[0].byteLength;
      const pickTensor = (i: number) => tensors[i % tensors.length];
      const cold = {
        trellis: await sampleOnce(() => client.put(pick(0))),
        redis: await sampleOnce(() => kv.set('cold', pick(0))),
      };
      let serial = 0;
      const key = () => `b:${serial++}`;
      const made: string[] = [];
      const dropMade = async () => void (made.length > 0 && (await client.delete(made.splice(0))));
      const flush = async () => void (await kv.flushdb());
      const batchOf = (i: number) => Array.from({ length: batch.batchSize }, (_, j) => pick(i * batch.batchSize + j));
      const putFrameBytes = encodeFrame({
        kind: 'putBlobs',
        seq: 1234,
        body: { sizes: [valueBytes], data: pick(0) },
      }).length;
      const { roundTrip: echo } = await connectEcho(echoSocket, putFrameBytes);
      const drivers: Record<PutDriver, () => Promise<SampleSet>> = {
        'raw echo of a put request': () => sample(echo, args.single),
        'trellis put': () =>
          sample(async (i) => void made.push(await client.put(pick(i))), { ...args.single, after: dropMade }),
        // The same put with the put ring turned off in a second connection: one request each.
        'trellis put over the socket': async () => {
          socketPutter ??= await connectWithoutRing();
          const over = socketPutter;
          return sample(async (i) => void made.push(await over.put(pick(i))), { ...args.single, after: dropMade });
        },
        // Ring puts resolve before the daemon registers them: here 100 one at a time, then one
        // request (the daemon drains the ring before it answers), so the daemon's side is timed too.
        'trellis put, registered': () =>
          perValue(
            sample(
              async (i) => {
                for (const value of batchOf(i)) made.push(await client.put(value));
                await client.exists(made[made.length - 1]);
              },
              { ...batch, after: dropMade },
            ),
            batch.batchSize,
          ),
        'redis SET': () => sample((i) => kv.set(key(), pick(i)), { ...args.single, after: flush }),
        // A small Float64Array: a Tensor through the ring (two objects in the daemon, a blob and its metadata).
        'trellis tensor put': () =>
          sample(async (i) => void made.push(await client.put(pickTensor(i))), { ...args.single, after: dropMade }),
        'trellis tensor put, registered': () =>
          perValue(
            sample(
              async (i) => {
                for (let j = 0; j < batch.batchSize; j++)
                  made.push(await client.put(pickTensor(i * batch.batchSize + j)));
                await client.exists(made[made.length - 1]);
              },
              { ...batch, after: dropMade },
            ),
            batch.batchSize,
          ),
        "redis SET of a tensor's bytes": () =>
          sample((i) => kv.set(key(), bytesOf(pickTensor(i))), { ...args.single, after: flush }),
        'trellis put, 100 in flight': () =>
          perValue(
            sample(async (i) => void made.push(...(await Promise.all(batchOf(i).map((b) => client.put(b))))), {
              ...batch,
              after: dropMade,
            }),
            batch.batchSize,
          ),
        'redis pipeline of 100 SETs': () =>
          perValue(
            sample(
              (i) => {
                const pipeline = kv.pipeline();
                for (const value of batchOf(i)) pipeline.set(key(), value);
                return pipeline.exec();
              },
              { ...batch, after: flush },
            ),
            batch.batchSize,
          ),
        'trellis putMany of 100': () =>
          perValue(
            sample(async (i) => void made.push(...(await client.putMany(batchOf(i)))), { ...batch, after: dropMade }),
            batch.batchSize,
          ),
        'redis MSET of 100': () =>
          perValue(
            sample(
              (i) => {
                const pairs: Array<string | Buffer> = [];
                for (const value of batchOf(i)) pairs.push(key(), value);
                return kv.mset(pairs);
              },
              { ...batch, after: flush },
            ),
            batch.batchSize,
          ),
      };
      const results = Object.fromEntries(PUT_DRIVERS.map((d) => [d, [] as SampleSet[]])) as Record<
        PutDriver,
        SampleSet[]
      >;
      for (let round = 0; round < args.rounds; round++) {
        for (const driver of PUT_DRIVERS) results[driver].push(await drivers[driver]());
      }
      await dropMade();
      await flush();
      // What the reader gets: written last, so nothing above deleted it.
      const ids: string[] = [];
      const keys: string[] = [];
      for (let i = 0; i < args.keep; i++) {
        ids.push(await client.put(pick(i)));
        keys.push(`k:${i}`);
        await kv.set(`k:${i}`, pick(i));
      }
      const tensorIds: string[] = [];
      const tensorKeys: string[] = [];
      for (let i = 0; i < args.keep; i++) {
        tensorIds.push(await client.put(pickTensor(i)));
        tensorKeys.push(`t:${i}`);
        await kv.set(`t:${i}`, bytesOf(pickTensor(i)));
      }
      return { drivers: results, cold, putFrameBytes, ids, keys, tensorIds, tensorKeys, tensorBytes };
    },

    /**
     * What this client keeps in its heap per object (heapUsed after two collections, per object;
     * the ids it was handed included, as a user keeps them): after `objects` ring puts of
     * `kind`, after a get of each over the socket and from the read index (values dropped, the
     * objects still held), and after release(). Untimed; run in a fresh process of its own.
     */
    async retained(args: { kind: 'buffer' | 'float64'; valueBytes: number; objects: number }): Promise<RetainedBytes> {
      const make = (i: number) =>
        args.kind === 'buffer' ? payload(i, args.valueBytes) : tensorPayload(i, args.valueBytes);
      const collect = () => {
        global.gc!();
        global.gc!();
        return process.memoryUsage().heapUsed;
      };
      const perObject = (from: number, to: number) => Math.round((to - from) / args.objects);
      const ids: string[] = new Array<string>(args.objects);
      await client.delete(await client.put(make(0)));
      // Connected before the first count: a connection's own memory is no object's.
      socketClient ??= await connectWithoutIndex();
      const over = socketClient;
      const start = collect();
      for (let i = 0; i < args.objects; i++) ids[i] = await client.put(make(i));
      await client.exists(ids[ids.length - 1]);
      const afterPut = collect();
      const overStart = collect();
      for (const id of ids) sink += (await over.get(id)) ? 1 : 0;
      const heldOverSocket = perObject(overStart, collect());
      for (let i = 0; i < ids.length; i += 1000) await over.release(ids.slice(i, i + 1000));
      const indexStart = collect();
      for (const id of ids) sink += (await client.get(id)) ? 1 : 0;
      const heldFromIndex = perObject(indexStart, collect());
      for (let i = 0; i < ids.length; i += 1000) await client.release(ids.slice(i, i + 1000));
      const released = perObject(start, collect());
      for (let i = 0; i < ids.length; i += 1000) await client.delete(ids.slice(i, i + 1000));
      return { objects: args.objects, put: perObject(start, afterPut), heldOverSocket, heldFromIndex, released };
    },

    /**
     * Only this fresh process's first operation, trellis's and Redis's, in the order given: the
     * runner starts several of these and alternates the order, so neither driver always pays for
     * what the other's first call leaves warm (Node's socket paths, Buffer code).
     */
    async firstOperation(args: FirstOperationArgs): Promise<{ trellis: SampleSet; redis: SampleSet }> {
      const value = payload(0, args.valueBytes);
      const trellisOp =
        args.what === 'put' ? () => client.put(value) : async () => void (sink += (await client.get(args.id!)) ? 1 : 0);
      const redisOp =
        args.what === 'put'
          ? () => kv.set('cold', value)
          : async () => void (sink += (await kv.getBuffer(args.key!)) ? 1 : 0);
      if (args.trellisFirst) {
        const trellis = await sampleOnce(trellisOp);
        return { trellis, redis: await sampleOnce(redisOp) };
      }
      const redis = await sampleOnce(redisOp);
      return { trellis: await sampleOnce(trellisOp), redis };
    },

    async getRate(
      args: RateArgs & { ids: string[]; keys: string[]; tensorIds: string[]; tensorKeys: string[] },
    ): Promise<GetRateResult> {
      const { ids, keys, batch, tensorIds, tensorKeys } = args;
      const expected = (i: number) => (i % 1000) & 0xff;
      let checked = true;
      const check = (buffer: Buffer | null | undefined, i: number) => {
        if (!buffer || buffer.length !== args.valueBytes || buffer[buffer.length - 1] !== expected(i)) checked = false;
        else sink += buffer[0];
      };
      const cold = {
        trellis: await sampleOnce(async () => check(await client.get(ids[0]), 0)),
        redis: await sampleOnce(async () => check(await kv.getBuffer(keys[0]), 0)),
      };
      const at = (i: number) => i % ids.length;
      const range = (i: number) => Array.from({ length: batch.batchSize }, (_, j) => at(i * batch.batchSize + j));
      const checkTensor = (tensor: Float64Array | null | undefined, i: number) => {
        if (!(tensor instanceof Float64Array) || tensor[0] !== i % 1000) checked = false;
        else sink += tensor[0];
      };
      // A get without copy must hand out a view of shared memory, from the index as from the daemon.
      let notShared = 0;
      const checkView = (buffer: Buffer, i: number) => {
        if (!client.isSharedMemory(buffer)) notShared++;
        check(buffer, i);
      };
      const getFrameBytes = encodeFrame({ kind: 'getObject', seq: 1234, body: { ref: ids[0] } }).length;
      const { roundTrip: echo } = await connectEcho(echoSocket, getFrameBytes);
      const drivers: Record<GetDriver, () => Promise<SampleSet>> = {
        'raw echo of a get request': () => sample(echo, args.single),
        // From the read index: a view of shared memory pinned by a hold counter (no copy).
        'trellis get': () => sample(async (i) => checkView(await client.get(ids[at(i)]), at(i)), args.single),
        // From the read index: a private copy of the bytes.
        'trellis get, copy: true': () =>
          sample(async (i) => check(await client.get(ids[at(i)], { copy: true }), at(i)), args.single),
        // The same get with the read index turned off in a second connection: one request each.
        'trellis get over the socket': async () => {
          socketClient ??= await connectWithoutIndex();
          const over = socketClient;
          return sample(async (i) => check(await over.get(ids[at(i)]), at(i)), args.single);
        },
        'redis GET': () => sample(async (i) => check(await kv.getBuffer(keys[at(i)]), at(i)), args.single),
        // The Float64Array the writer put at i has i as its first element (and i & 0xff in the rest).
        'trellis tensor get': () =>
          sample(async (i) => checkTensor(await client.get(tensorIds[at(i)]), at(i)), args.single),
        "redis GET of a tensor's bytes": () =>
          sample(async (i) => {
            const buffer = await kv.getBuffer(tensorKeys[at(i)]);
            checkTensor(buffer && float64sOf(buffer), at(i));
          }, args.single),
        'trellis get, 100 in flight': () =>
          perValue(
            sample(async (i) => {
              const which = range(i);
              const got = await Promise.all(which.map((k) => client.get(ids[k])));
              got.forEach((buffer, j) => checkView(buffer, which[j]));
            }, batch),
            batch.batchSize,
          ),
        'redis pipeline of 100 GETs': () =>
          perValue(
            sample(async (i) => {
              const which = range(i);
              const pipeline = kv.pipeline();
              for (const k of which) pipeline.getBuffer(keys[k]);
              const got = (await pipeline.exec()) ?? [];
              got.forEach(([, buffer], j) => check(buffer as Buffer, which[j]));
            }, batch),
            batch.batchSize,
          ),
        'trellis getMany of 100': () =>
          perValue(
            sample(async (i) => {
              const which = range(i);
              const got = await getMany(
                client,
                which.map((k) => ids[k]),
              );
              got.forEach((buffer, j) => checkView(buffer as Buffer, which[j]));
            }, batch),
            batch.batchSize,
          ),
        'redis MGET of 100': () =>
          perValue(
            sample(async (i) => {
              const which = range(i);
              const got = await kv.mgetBuffer(which.map((k) => keys[k]));
              got.forEach((buffer, j) => check(buffer, which[j]));
            }, batch),
            batch.batchSize,
          ),
      };
      const results = Object.fromEntries(GET_DRIVERS.map((d) => [d, [] as SampleSet[]])) as Record<
        GetDriver,
        SampleSet[]
      >;
      for (let round = 0; round < args.rounds; round++) {
        for (const driver of GET_DRIVERS) results[driver].push(await drivers[driver]());
      }
      const readIndex = client.readIndexStats && { ...client.readIndexStats };
      return { drivers: results, cold, getFrameBytes, checked: checked && sink >= 0, readIndex, notShared };
    },
  };
}

/** Another connection to the same daemon that gets everything over the socket. */
async function connectWithoutRing(): Promise<TrellisClient> {
  const other = await connect(argument('--socket'));
  // null: this client has no put ring (client/put-ring.ts), so every put is a request, as before it existed.
  (other as unknown as { putRing?: null }).putRing = null;
  return other;
}

async function connectWithoutIndex(): Promise<TrellisClient> {
  const other = await connect(argument('--socket'));
  // Before the read index existed there was nothing to turn off.
  (other as unknown as { useReadIndex?: (reader: undefined) => void }).useReadIndex?.(undefined);
  return other;
}

/** getMany where the client has it; before it existed, the same gets all in flight. */
function getMany(client: TrellisClient, ids: string[]): Promise<unknown[]> {
  const many = (client as unknown as { getMany?: (ids: string[]) => Promise<unknown[]> }).getMany;
  return many ? many.call(client, ids) : Promise.all(ids.map((id) => client.get(id)));
}

function argument(name: string): string {
  const at = process.argv.indexOf(name);
  if (at < 0 || at + 1 >= process.argv.length) throw new Error(`small-values-client: ${name} PATH is required`);
  return process.argv[at + 1];
}

async function main(): Promise<void> {
  const client = await connect(argument('--socket'));
  const kv = new Redis({ path: argument('--redis-socket'), lazyConnect: true, enableAutoPipelining: false });
  await kv.connect();
  serveCommands(commands(client, kv, argument('--echo-socket')));
}

export type SmallValuesClientCommands = ReturnType<typeof commands>;

if (require.main === module) void main();
