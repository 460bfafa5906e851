/**
 * objects-small's A/B child (bench/suites/objects-small/ab.ts): small Buffers put and got with
 * trellis only (no Redis, no echo: those would be the same in both builds), in a fresh process:
 * `node small-values-ab.ts --socket PATH`, started with TRELLIS_BENCH_BUILD naming the build it
 * loads (lib/dist.ts). A writer sample times its first put, then warm puts; a reader sample its
 * first get, then warm gets of what the setup stored; each then does the same one at a time over
 * the socket, from a second connection with no put ring and no read index. Beside the Buffers, a
 * small Float64Array (a Tensor) of about the same bytes, put and got one at a time. Results in
 * milliseconds by metric.
 */
import { sample, sampleOnce, type SampleOptions } from '../lib/sampler';
import { serveCommands } from '../lib/serve-commands';
import { summarize } from '../lib/stats';
import { loadTrellis } from '../lib/dist';

const { connect } = loadTrellis();

/** Written by reads so that no read can be optimized away. */
let sink = 0;

export interface AbRateArgs {
  valueBytes: number;
  /** One at a time: `opsPerSample` operations per timed sample. */
  single: { iterations: number; warmup: number; opsPerSample: number };
  /** In flight and batches: `batchSize` values per timed sample. */
  batch: { iterations: number; warmup: number; batchSize: number };
  /** Over the socket, one at a time (a round trip each: its warm-up is shorter). */
  socket: { iterations: number; warmup: number; opsPerSample: number };
}

function payload(i: number, bytes: number): Buffer {
  const buffer = Buffer.alloc(bytes, i & 0xff);
  buffer.writeUInt32LE(i >>> 0, 0);
  return buffer;
}

/**
 * Samples `op` once it is warm: the warm-up runs through the timed loop itself (sample's own
 * warm-up loop is another function, which left the timed loop to be compiled inside the first
 * timed samples). A fresh process's puts took ~4 µs for their first 1,500 and came down to ~0.6
 * µs only after ~10,000: rows timed inside that descent moved with whatever shifted V8's
 * tier-up by a little (an A/A run against the same build in another directory differed 10-20%).
 */
async function steady(op: (i: number) => unknown, options: SampleOptions): Promise<{ samplesNs: number[] }> {
  await sample(op, { ...options, iterations: options.warmup ?? 0, warmup: 0 });
  return sample(op, { ...options, warmup: 0 });
}

/** A Float64Array of at least `bytes` bytes (whole elements), its first element `i`. */
export function tensorPayload(i: number, bytes: number): Float64Array {
  const tensor = new Float64Array(Math.ceil(bytes / Float64Array.BYTES_PER_ELEMENT)).fill(i & 0xff);
  tensor[0] = i;
  return tensor;
}

/** The median time of one operation, in milliseconds (a sample's time is per operation already). */
async function medianMs(pending: Promise<{ samplesNs: number[] }>, perSample = 1): Promise<number> {
  return summarize((await pending).samplesNs).median / perSample / 1e6;
}

type TrellisClient = Awaited<ReturnType<typeof connect>>;

/**
 * A second connection of this process whose puts and gets are all requests over the socket: no
 * put ring, no read index (where the build has them), as objects-small's "over the socket" rows.
 */
async function connectOverSocket(socket: string): Promise<TrellisClient> {
  const other = await connect(socket);
  (other as unknown as { putRing?: null }).putRing = null;
  (other as unknown as { useReadIndex?: (reader: undefined) => void }).useReadIndex?.(undefined);
  return other;
}

function abCommands(client: TrellisClient, socket: string) {
  const getMany = (ids: string[]): Promise<unknown[]> => {
    // getMany where the build has it; before it existed, the same gets all in flight.
    const many = (client as unknown as { getMany?: (ids: string[]) => Promise<unknown[]> }).getMany;
    return many ? many.call(client, ids) : Promise.all(ids.map((id) => client.get(id)));
  };
  const overSocket = async (measure: (over: TrellisClient) => Promise<number>): Promise<number> => {
    const over = await connectOverSocket(socket);
    try {
      return await measure(over);
    } finally {
      await over.close();
    }
  };
  return {
    /** The setup: `count` values a reader gets, left in the daemon. */
    async store({ valueBytes, count }: { valueBytes: number; count: number }): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) ids.push(await client.put(payload(i, valueBytes)));
      return ids;
    },

    /** The setup's Float64Arrays a reader gets (`valueBytes` rounded up to whole elements). */
    async storeTensors({ valueBytes, count }: { valueBytes: number; count: number }): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) ids.push(await client.put(tensorPayload(i, valueBytes)));
      return ids;
    },

    /** This process's first put, then warm puts one at a time, 100 in flight and putMany of 100. */
    async writer(args: AbRateArgs): Promise<Record<string, number>> {
      const pool = Array.from({ length: 1000 }, (_, i) => payload(i, args.valueBytes));
      const pick = (i: number) => pool[i % pool.length];
      const made: string[] = [];
      const first = (await sampleOnce(async () => void made.push(await client.put(pick(0))))).samplesNs[0] / 1e6;
      const dropMade = async () => void (made.length > 0 && (await client.delete(made.splice(0))));
      const single: SampleOptions = { ...args.single, after: dropMade };
      const batch: SampleOptions = { ...args.batch, after: dropMade };
      const socket: SampleOptions = { ...args.socket, after: dropMade };
      const batchOf = (i: number) =>
        Array.from({ length: args.batch.batchSize }, (_, j) => pick(i * args.batch.batchSize + j));
      const size = args.batch.batchSize;
      const result = {
        'first put': first,
        'put, warm': await medianMs(steady(async (i) => void made.push(await client.put(pick(i))), single)),
        'put, 100 in flight (per value)': await medianMs(
          steady(async (i) => void made.push(...(await Promise.all(batchOf(i).map((b) => client.put(b))))), batch),
          size,
        ),
        'putMany of 100 (per value)': await medianMs(
          steady(async (i) => void made.push(...(await client.putMany(batchOf(i)))), batch),
          size,
        ),
        'put over the socket, warm': await overSocket((over) =>
          medianMs(steady(async (i) => void made.push(await over.put(pick(i))), socket)),
        ),
        ...(await tensorPuts(args, made, dropMade)),
      };
      await dropMade();
      return result;
    },

    /** This process's first get of what the setup stored, then warm gets one at a time, in flight and getMany. */
    async reader(args: AbRateArgs & { ids: string[]; tensorIds?: string[] }): Promise<Record<string, number>> {
      const { ids } = args;
      const at = (i: number) => i % ids.length;
      const read = (value: unknown) => void (sink += Buffer.isBuffer(value) ? value[0] : 0);
      const first = (await sampleOnce(async () => read(await client.get(ids[0])))).samplesNs[0] / 1e6;
      const size = args.batch.batchSize;
      const range = (i: number) => Array.from({ length: size }, (_, j) => ids[at(i * size + j)]);
      return {
        'first get': first,
        'get, warm': await medianMs(steady(async (i) => read(await client.get(ids[at(i)])), args.single)),
        'get, 100 in flight (per value)': await medianMs(
          steady(async (i) => (await Promise.all(range(i).map((id) => client.get(id)))).forEach(read), args.batch),
          size,
        ),
        'getMany of 100 (per value)': await medianMs(
          steady(async (i) => (await getMany(range(i))).forEach(read), args.batch),
          size,
        ),
        'get over the socket, warm': await overSocket((over) =>
          medianMs(steady(async (i) => read(await over.get(ids[at(i)])), args.socket)),
        ),
        ...(args.tensorIds ? await tensorGets(args, args.tensorIds) : {}),
      };
    },
  };

  /**
   * Warm puts one at a time of a Buffer and of a Float64Array of about the same bytes, each also
   * "registered": 100 ring puts and then one request, which the daemon answers only after it has
   * registered them, so the daemon's share is timed too (a tensor is two objects there).
   */
  async function tensorPuts(args: AbRateArgs, made: string[], dropMade: () => Promise<void>) {
    const tensors = Array.from({ length: 1000 }, (_, i) => tensorPayload(i, args.valueBytes));
    const buffers = Array.from({ length: 1000 }, (_, i) => payload(i, args.valueBytes));
    const size = args.batch.batchSize;
    const registered = (pool: ArrayBufferView[]) =>
      medianMs(
        steady(
          async (i) => {
            for (let j = 0; j < size; j++) made.push(await client.put(pool[(i * size + j) % pool.length]));
            await client.exists(made[made.length - 1]);
          },
          { ...args.batch, after: dropMade },
        ),
        size,
      );
    return {
      'tensor put, warm': await medianMs(
        steady(async (i) => void made.push(await client.put(tensors[i % tensors.length])), {
          ...args.single,
          after: dropMade,
        }),
      ),
      'put, registered (per value)': await registered(buffers),
      'tensor put, registered (per value)': await registered(tensors),
    };
  }

  /** Warm gets one at a time of the setup's Float64Arrays (through the read index where the build has it). */
  async function tensorGets(args: AbRateArgs, tensorIds: string[]) {
    const readTensor = (value: unknown) => void (sink += value instanceof Float64Array ? value[0] : 0);
    return {
      'tensor get, warm': await medianMs(
        steady(async (i) => readTensor(await client.get(tensorIds[i % tensorIds.length])), args.single),
      ),
    };
  }
}

export type SmallValuesAbCommands = ReturnType<typeof abCommands>;

async function main(): Promise<void> {
  const at = process.argv.indexOf('--socket');
  if (at < 0 || at + 1 >= process.argv.length) throw new Error('small-values-ab: --socket PATH is required');
  const socket = process.argv[at + 1];
  const client = await connect(socket);
  process.on('exit', () => void sink);
  serveCommands(abCommands(client, socket));
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`small-values-ab: ${error.stack ?? error.message}\n`);
    process.exit(1);
  });
}
