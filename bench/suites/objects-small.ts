/**
 * objects-small: small Buffers (100 B) put and got one at a time, 100 in flight and in batches of
 * 100, and a small Float64Array (104 B, a Tensor) one at a time,
 * against Redis over its UNIX socket doing the same (SET/GET, a pipeline, MSET/MGET) from
 * the same process, interleaved; and each one-at-a-time trellis request against a raw Node
 * UNIX-socket echo of the same number of bytes (a socket-echo.ts server), also interleaved.
 * `npm run bench -- objects` runs it after the objects suite; `-- objects-small` alone.
 *
 * A writer process puts, then a different fresh reader process gets what it put. "cold" rows are
 * each fresh process's first operation (connection set up before it, JIT cold, first segment
 * mapped), from the writer, the reader and several more fresh processes; the rest are warm (after
 * warm-up, in the same process).
 * Placement as in core: trellisd, redis-server and the echo server on one CPU, clients on the other.
 */
import type {
  GetDriver,
  GetRateResult,
  PutDriver,
  RetainedBytes,
  PutRateResult,
  RateArgs,
  SmallValuesClientCommands,
} from '../children/small-values-client';
import type { SocketEchoCommands } from '../children/socket-echo';
import { startChild, withChild } from '../lib/child';
import { runObjectsSmallAb } from './objects-small/ab';
import { crossCorePlacement, describePlacement } from '../lib/cpu';
import { startBenchDaemon } from '../lib/daemon';
import { formatDuration, formatRatio } from '../lib/format';
import { startBenchRedis } from '../lib/redis';
import type { SampleSet } from '../lib/sampler';
import { pooled, sampleRow } from '../lib/sample-row';
import { summarize } from '../lib/stats';
import type { Row, Suite, SuiteContext, SuiteReport, TargetCheck } from '../lib/suite';
import type { Column } from '../lib/table';

const PLAN = {
  valueBytes: 100,
  /** Ids the writer leaves for the reader; gets cycle over them. */
  keep: 2000,
  rate: {
    valueBytes: 100,
    // Warm-up of 2,000 operations: the client request path reaches its steady speed only after a few thousand.
    single: { iterations: 40, warmup: 40, opsPerSample: 50 },
    batch: { iterations: 30, warmup: 10, batchSize: 100 },
    rounds: 3,
  } satisfies RateArgs,
  /**
   * Fresh processes that only time their first put or first get (beside the writer's and the
   * reader's own first operation), the order of trellis and Redis alternating: one sample a
   * process, so a run needs several for its median to mean something.
   */
  freshProcesses: 6,
  /** Objects a fresh client puts, gets (over the socket, from the index) and releases: its heap per object. */
  retainedObjects: 10_000,
};

/** The goals (rate ratios: trellis ops/s over the baseline's). */
const GOALS = { oneAtATimeVsRedis: 1.5, inFlightVsPipeline: 1, batchVsMulti: 1, requestVsEcho: 1.5 };

type FirstOperation = PutRateResult['cold'];

interface Measurements {
  puts: PutRateResult;
  gets: GetRateResult;
  retained: Record<'buffer' | 'float64', RetainedBytes>;
  notes: string[];
}

async function measure({ scope, log }: SuiteContext): Promise<Measurements> {
  const placement = crossCorePlacement();
  const cpu = placement?.clientCpu;
  const daemon = await startBenchDaemon(scope, { size: '1GiB', cpu: placement?.serverCpu });
  const redis = await startBenchRedis(scope, { cpu: placement?.serverCpu, unixSocket: true, log });
  log(`trellisd pid ${daemon.pid}, ${redis.description}; ${describePlacement(placement)}`);
  const echoSocket = scope.path('echo.sock');
  const echo = await startChild<SocketEchoCommands>(scope, 'socket-echo.ts', ['server'], { cpu: placement?.serverCpu });
  await echo.call('listen', { socket: echoSocket });
  const args = ['--socket', daemon.socket, '--redis-socket', redis.socket!, '--echo-socket', echoSocket];
  log(`writer process: put rates of ${PLAN.valueBytes} B Buffers, ${PLAN.rate.rounds} interleaved rounds`);
  const puts = await withChild<SmallValuesClientCommands, PutRateResult>(
    scope,
    'small-values-client.ts',
    args,
    { cpu },
    (writer) => writer.call('putRate', { ...PLAN.rate, keep: PLAN.keep }),
  );
  log(`reader process (fresh): get rates of what the writer put`);
  const gets = await withChild<SmallValuesClientCommands, GetRateResult>(
    scope,
    'small-values-client.ts',
    args,
    { cpu },
    (reader) =>
      reader.call('getRate', {
        ...PLAN.rate,
        ids: puts.ids,
        keys: puts.keys,
        tensorIds: puts.tensorIds,
        tensorKeys: puts.tensorKeys,
      }),
  );
  log(`${PLAN.freshProcesses} fresh processes for each first put and first get, the order alternating`);
  const firsts = { put: [puts.cold], get: [gets.cold] };
  for (let i = 0; i < PLAN.freshProcesses; i++) {
    for (const what of ['put', 'get'] as const) {
      const first = await withChild<SmallValuesClientCommands, FirstOperation>(
        scope,
        'small-values-client.ts',
        args,
        { cpu },
        (fresh) =>
          fresh.call('firstOperation', {
            what,
            valueBytes: PLAN.valueBytes,
            id: puts.ids[i + 1],
            key: puts.keys[i + 1],
            trellisFirst: i % 2 === 1,
          }),
      );
      firsts[what].push(first);
    }
  }
  log(`client heap per object: ${PLAN.retainedObjects} puts, gets and releases in a fresh process for each kind`);
  const retained = {} as Measurements['retained'];
  for (const kind of ['buffer', 'float64'] as const) {
    retained[kind] = await withChild<SmallValuesClientCommands, RetainedBytes>(
      scope,
      'small-values-client.ts',
      args,
      { cpu },
      (fresh) => fresh.call('retained', { kind, valueBytes: PLAN.valueBytes, objects: PLAN.retainedObjects }),
    );
  }
  const pool = (sets: FirstOperation[]) => ({
    trellis: pooled(sets.map((set) => set.trellis)),
    redis: pooled(sets.map((set) => set.redis)),
  });
  await echo.stop();
  await redis.stop();
  await daemon.stop();
  return {
    puts: { ...puts, cold: pool(firsts.put) },
    gets: { ...gets, cold: pool(firsts.get) },
    retained,
    notes: [`${redis.description}; ioredis over the UNIX socket`, describePlacement(placement)],
  };
}

const median = (set: SampleSet) => summarize(set.samplesNs).median;

function perSecond(nsPerOp: number): string {
  const rate = 1e9 / nsPerOp;
  return rate >= 1e6 ? `${(rate / 1e6).toFixed(2)}M/s` : `${(rate / 1e3).toFixed(1)}k/s`;
}

/**
 * One comparison: a trellis driver against its baseline, measured in the same process and run.
 * `rate`: the ratio is the trellis rate over the baseline's (higher is better); `time`: trellis's
 * time over the baseline's (lower is better), as for the raw echo a request is held to.
 */
interface Comparison {
  name: string;
  trellis: SampleSet;
  baselineName: string;
  baseline: SampleSet;
  kind: 'rate' | 'time';
  /** The goal for the ratio, when it sets one. */
  goal?: number;
}

function ratioOf(c: Comparison): number {
  return c.kind === 'rate' ? median(c.baseline) / median(c.trellis) : median(c.trellis) / median(c.baseline);
}

function metGoal(c: Comparison): boolean | undefined {
  if (c.goal === undefined) return undefined;
  return c.kind === 'rate' ? ratioOf(c) >= c.goal : ratioOf(c) <= c.goal;
}

/** A rate comparison's median with its rate; a time comparison's alone (a first operation has no rate). */
const medianOf = (c: Comparison, set: SampleSet) =>
  c.kind === 'rate' ? `${formatDuration(median(set))} (${perSecond(median(set))})` : formatDuration(median(set));

const COMPARISON_COLUMNS: Column[] = [
  { header: 'comparison' },
  { header: 'trellis', align: 'right' },
  { header: 'baseline' },
  { header: 'ratio', align: 'right' },
  { header: 'target', align: 'right' },
  { header: 'met' },
];

function comparisonRow(c: Comparison): string[] {
  const met = metGoal(c);
  const sign = c.kind === 'rate' ? '>=' : '<=';
  return [
    c.name,
    medianOf(c, c.trellis),
    `${c.baselineName}: ${medianOf(c, c.baseline)}`,
    // Two decimals below 10x, so a ratio just past its goal does not print as the goal.
    `${ratioOf(c) < 10 ? ratioOf(c).toFixed(2) : ratioOf(c).toFixed(0)}x ${c.kind}`,
    c.goal === undefined ? '' : `${sign} ${c.goal}x`,
    met === undefined ? '' : met ? 'MET' : 'miss',
  ];
}

function comparisons(m: Measurements): Comparison[] {
  const put = (d: PutDriver) => pooled(m.puts.drivers[d]);
  const get = (d: GetDriver) => pooled(m.gets.drivers[d]);
  const g = GOALS;
  const putEcho = `raw echo of ${m.puts.putFrameBytes} B`;
  const getEcho = `raw echo of ${m.gets.getFrameBytes} B`;
  const rate = (name: string, trellis: SampleSet, baselineName: string, baseline: SampleSet, goal?: number) =>
    ({ name, trellis, baselineName, baseline, kind: 'rate', goal }) satisfies Comparison;
  return [
    // One request against a raw echo of its own frame: what trellis adds to the socket.
    {
      name: 'put over the socket (one request)',
      trellis: put('trellis put over the socket'),
      baselineName: putEcho,
      baseline: put('raw echo of a put request'),
      kind: 'time',
      goal: g.requestVsEcho,
    },
    {
      name: 'get over the socket (one request)',
      trellis: get('trellis get over the socket'),
      baselineName: getEcho,
      baseline: get('raw echo of a get request'),
      kind: 'time',
      goal: g.requestVsEcho,
    },
    // No request at all (the put ring, the read index): the echo is what any round trip costs.
    rate('put through the put ring (no request)', put('trellis put'), putEcho, put('raw echo of a put request')),
    rate(
      'get, a pinned view from the read index (no request)',
      get('trellis get'),
      getEcho,
      get('raw echo of a get request'),
    ),
    rate('put (put ring)', put('trellis put'), 'redis SET', put('redis SET'), g.oneAtATimeVsRedis),
    // No target: what a put costs once the daemon has registered it too (see the notes).
    rate(
      'put, registered (100 ring puts, then a request)',
      put('trellis put, registered'),
      'redis SET',
      put('redis SET'),
    ),
    rate(
      `Float64Array put (put ring), ${m.puts.tensorBytes} B`,
      put('trellis tensor put'),
      'redis SET of the same bytes',
      put("redis SET of a tensor's bytes"),
      g.oneAtATimeVsRedis,
    ),
    rate(
      'Float64Array put, registered',
      put('trellis tensor put, registered'),
      'redis SET of the same bytes',
      put("redis SET of a tensor's bytes"),
    ),
    rate('put over the socket', put('trellis put over the socket'), 'redis SET', put('redis SET'), g.oneAtATimeVsRedis),
    rate('get (read index, zero-copy view)', get('trellis get'), 'redis GET', get('redis GET'), g.oneAtATimeVsRedis),
    rate(
      'get, copy: true (read index)',
      get('trellis get, copy: true'),
      'redis GET',
      get('redis GET'),
      g.oneAtATimeVsRedis,
    ),
    rate(
      'Float64Array get (read index, zero-copy view)',
      get('trellis tensor get'),
      'redis GET of the same bytes',
      get("redis GET of a tensor's bytes"),
      g.oneAtATimeVsRedis,
    ),
    rate('get over the socket', get('trellis get over the socket'), 'redis GET', get('redis GET'), g.oneAtATimeVsRedis),
    rate(
      'put, 100 in flight',
      put('trellis put, 100 in flight'),
      'redis pipeline of 100 SETs',
      put('redis pipeline of 100 SETs'),
      g.inFlightVsPipeline,
    ),
    rate(
      'get, 100 in flight',
      get('trellis get, 100 in flight'),
      'redis pipeline of 100 GETs',
      get('redis pipeline of 100 GETs'),
      g.inFlightVsPipeline,
    ),
    rate(
      'putMany of 100',
      put('trellis putMany of 100'),
      'redis MSET of 100',
      put('redis MSET of 100'),
      g.batchVsMulti,
    ),
    rate(
      'getMany of 100',
      get('trellis getMany of 100'),
      'redis MGET of 100',
      get('redis MGET of 100'),
      g.batchVsMulti,
    ),
    {
      name: 'first put of a fresh process',
      trellis: m.puts.cold.trellis,
      baselineName: 'redis first SET',
      baseline: m.puts.cold.redis,
      kind: 'time',
    },
    {
      name: 'first get of a fresh process',
      trellis: m.gets.cold.trellis,
      baselineName: 'redis first GET',
      baseline: m.gets.cold.redis,
      kind: 'time',
    },
  ];
}

const RETAINED_COLUMNS: Column[] = [
  { header: 'value' },
  { header: 'put (ring), kept', align: 'right' },
  { header: 'got over the socket, held', align: 'right' },
  { header: 'got from the read index, held', align: 'right' },
  { header: 'after release', align: 'right' },
];

function retainedRow(kind: 'buffer' | 'float64', r: RetainedBytes): string[] {
  const bytes = (n: number) => `${n} B`;
  const what = kind === 'buffer' ? `${PLAN.valueBytes} B Buffer` : 'Float64Array (104 B)';
  return [what, bytes(r.put), bytes(r.heldOverSocket), bytes(r.heldFromIndex), bytes(r.released)];
}

function report(m: Measurements): SuiteReport {
  const bytes = PLAN.valueBytes;
  // Each measurement once, with what explains it (n, p99, faults, GC); the comparisons table says what it means.
  const rows: Row[] = [
    // The child's driver tables, in its order (the runner does not load the child's module).
    ...Object.entries(m.puts.drivers).map(([d, sets]) => sampleRow('puts, warm (per value)', d, pooled(sets), bytes)),
    ...Object.entries(m.gets.drivers).map(([d, sets]) => sampleRow('gets, warm (per value)', d, pooled(sets), bytes)),
    ...(['put', 'get'] as const).flatMap((what) => {
      const cold = what === 'put' ? m.puts.cold : m.gets.cold;
      const section = `cold: the first operation of a fresh process (${PLAN.freshProcesses + 1} processes)`;
      return [
        sampleRow(section, `redis first ${what}`, cold.redis, bytes),
        sampleRow(section, `trellis first ${what}`, cold.trellis, bytes),
      ];
    }),
  ];
  const compared = comparisons(m);
  const targets: TargetCheck[] = compared
    .filter((c) => c.goal !== undefined)
    .map((c) => ({
      target: `${c.name}: ${c.kind} ${c.kind === 'rate' ? '>=' : '<='} ${c.goal}x ${c.baselineName}`,
      measured: formatRatio(ratioOf(c)),
      met: metGoal(c)!,
    }));
  return {
    rows,
    tables: [
      {
        title:
          'trellis against its baseline, medians of the same run (ratio: "rate" is trellis\'s rate over the ' +
          "baseline's, higher is better; \"time\" is trellis's time over the baseline's, lower is better)",
        columns: COMPARISON_COLUMNS,
        rows: compared.map(comparisonRow),
      },
      {
        title:
          `client heap per object (heapUsed after GC, over ${PLAN.retainedObjects.toLocaleString('en-US')} objects ` +
          'of a fresh process; the ids it was handed included, ~40 B each; "after release" also holds the code ' +
          "V8 compiled meanwhile, ~0.3 MB in all, no object's: a heap snapshot diff shows nothing else)",
        columns: RETAINED_COLUMNS,
        rows: (['buffer', 'float64'] as const).map((kind) => retainedRow(kind, m.retained[kind])),
      },
    ],
    targets,
    targetsShownInTables: true,
    notes: [
      ...m.notes,
      'rates are per value; "100 in flight" issues 100 single requests without waiting, as a pipeline does',
      'put, put in flight and putMany go through the put ring (docs/put-ring.md): they resolve before the daemon ' +
        'registers the objects, which it does on its own CPU (before its next request, or within about 1 ms); ' +
        '"registered" times 100 ring puts plus one request, which the daemon answers only after registering them; ' +
        '"over the socket" is a connection without a ring (one request per put)',
      "the raw echo sends a request's own frame to a plain Node UNIX-socket echo server and waits for it back",
      `every Buffer got was checked against what was put: ${m.gets.checked ? 'all matched' : 'MISMATCH'}`,
      `Buffers got without copy that were not views of shared memory: ${m.gets.notShared ?? 'not counted'}`,
      `reader's read index at the end: ${m.gets.readIndex ? JSON.stringify(m.gets.readIndex) : 'not mapped'}; ` +
        '"trellis get", "100 in flight" and "getMany" use it (a view pinned by a hold counter, no request), ' +
        '"copy: true" copies the bytes out, "over the socket" is a connection without the index',
    ],
    data: { puts: { drivers: m.puts.drivers, cold: m.puts.cold }, gets: m.gets, retained: m.retained },
  };
}

export const suite: Suite = {
  name: 'objects-small',
  title:
    'small Buffers and Float64Arrays: put/get one at a time, in flight and batched, against Redis over a UNIX socket and a raw echo',
  async run(context) {
    return report(await measure(context));
  },
  runAb: runObjectsSmallAb,
};
