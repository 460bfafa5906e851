/**
 * objects-small: small Buffers (100 B) put and got one at a time, 100 in flight and in batches of
 * 100, against Redis over its UNIX socket doing the same (SET/GET, a pipeline, MSET/MGET) from
 * the same process, interleaved; and each one-at-a-time trellis request against a raw Node
 * UNIX-socket echo of the same number of bytes (a socket-echo.ts server), also interleaved.
 * `npm run bench -- objects` runs it after the objects suite; `-- objects-small` alone.
 *
 * A writer process puts, then a different fresh reader process gets what it put. "cold" rows are
 * each fresh process's first operation (connection set up, JIT cold, first segment mapped); the
 * rest are warm (after warm-up, in the same process).
 * Placement as in core: trellisd, redis-server and the echo server on one CPU, clients on the other.
 */
import type {
  GetDriver,
  GetRateResult,
  PutDriver,
  PutRateResult,
  RateArgs,
  SmallValuesClientCommands,
} from '../children/small-values-client';
import type { SocketEchoCommands } from '../children/socket-echo';
import { startChild, withChild } from '../lib/child';
import { crossCorePlacement, describePlacement } from '../lib/cpu';
import { startBenchDaemon } from '../lib/daemon';
import { formatRatio } from '../lib/format';
import { startBenchRedis } from '../lib/redis';
import type { SampleSet } from '../lib/sampler';
import { pooled, sampleRow } from '../lib/sample-row';
import { summarize } from '../lib/stats';
import type { Row, Suite, SuiteContext, SuiteReport, TargetCheck } from '../lib/suite';

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
};

/** The goals (rate ratios: trellis ops/s over the baseline's). */
const GOALS = { oneAtATimeVsRedis: 1.5, inFlightVsPipeline: 1, batchVsMulti: 1, requestVsEcho: 1.5 };

interface Measurements {
  puts: PutRateResult;
  gets: GetRateResult;
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
    (reader) => reader.call('getRate', { ...PLAN.rate, ids: puts.ids, keys: puts.keys }),
  );
  await echo.stop();
  await redis.stop();
  await daemon.stop();
  return {
    puts,
    gets,
    notes: [`${redis.description}; ioredis over the UNIX socket`, describePlacement(placement)],
  };
}

const median = (set: SampleSet) => summarize(set.samplesNs).median;

function perSecond(nsPerOp: number): string {
  const rate = 1e9 / nsPerOp;
  return rate >= 1e6 ? `${(rate / 1e6).toFixed(2)}M/s` : `${(rate / 1e3).toFixed(1)}k/s`;
}

/** trellis against its baseline: rows for both, a target on the rate ratio. */
function compare(
  section: string,
  trellis: string,
  trellisSet: SampleSet,
  baseline: string,
  baselineSet: SampleSet,
  goal: number,
  bytes: number | undefined,
): { rows: Row[]; target: TargetCheck } {
  const ratio = median(baselineSet) / median(trellisSet);
  return {
    rows: [
      sampleRow(section, `${baseline} (baseline)`, baselineSet, bytes, perSecond(median(baselineSet))),
      sampleRow(
        section,
        trellis,
        trellisSet,
        bytes,
        `${perSecond(median(trellisSet))}, ${formatRatio(ratio)} ${baseline} rate`,
      ),
    ],
    target: {
      target: `${section}: ${trellis} rate >= ${goal}x ${baseline}`,
      measured: formatRatio(ratio),
      met: ratio >= goal,
    },
  };
}

function report(m: Measurements): SuiteReport {
  const rows: Row[] = [];
  const targets: TargetCheck[] = [];
  const add = ({ rows: r, target }: { rows: Row[]; target: TargetCheck }) => {
    rows.push(...r);
    targets.push(target);
  };
  const bytes = PLAN.valueBytes;
  const put = (d: PutDriver) => pooled(m.puts.drivers[d]);
  const get = (d: GetDriver) => pooled(m.gets.drivers[d]);

  const echoVs = (section: string, what: string, set: SampleSet, echo: SampleSet, frame: number) => {
    const ratio = median(set) / median(echo);
    rows.push(sampleRow(section, `raw UNIX-socket echo of ${frame} B (baseline)`, echo, undefined, ''));
    rows.push(sampleRow(section, what, set, bytes, `${formatRatio(ratio)} the echo's time`));
    targets.push({
      target: `${section}: ${what} <= ${GOALS.requestVsEcho}x a raw echo of its ${frame} B`,
      measured: formatRatio(ratio),
      met: ratio <= GOALS.requestVsEcho,
    });
  };
  const putEcho = put('raw echo of a put request');
  const getEcho = get('raw echo of a get request');
  echoVs(
    'request, warm',
    'trellis put over the socket (one request)',
    put('trellis put over the socket'),
    putEcho,
    m.puts.putFrameBytes,
  );
  // A put through the put ring is no request at all (docs/put-ring.md): as the read index's get.
  const ringPut = put('trellis put');
  rows.push(
    sampleRow(
      'request, warm',
      'trellis put through the put ring (no request)',
      ringPut,
      bytes,
      `${formatRatio(median(putEcho) / median(ringPut))} the echo's rate`,
    ),
  );
  echoVs(
    'request, warm',
    'trellis get over the socket (one request)',
    get('trellis get over the socket'),
    getEcho,
    m.gets.getFrameBytes,
  );
  // A get from the read index is no request at all: the echo is what any round trip costs.
  for (const [driver, what] of [
    ['trellis get', 'trellis get, a pinned view from the read index (no request)'],
    ['trellis get, copy: true', 'trellis get, copy: true, from the read index (no request)'],
  ] as const) {
    const indexed = get(driver);
    rows.push(
      sampleRow(
        'request, warm',
        what,
        indexed,
        bytes,
        `${formatRatio(median(getEcho) / median(indexed))} the echo's rate`,
      ),
    );
  }

  const section = 'small Buffers, warm';
  const g = GOALS;
  add(
    compare(
      section,
      'trellis put (put ring)',
      put('trellis put'),
      'redis SET',
      put('redis SET'),
      g.oneAtATimeVsRedis,
      bytes,
    ),
  );
  // No target: what a put costs once the daemon has registered it too (see the note).
  rows.push(
    ...compare(
      section,
      'trellis put, registered (100 through the ring, then a request)',
      put('trellis put, registered'),
      'redis SET',
      put('redis SET'),
      g.oneAtATimeVsRedis,
      bytes,
    ).rows.slice(1),
  );
  add(
    compare(
      section,
      'trellis put over the socket',
      put('trellis put over the socket'),
      'redis SET',
      put('redis SET'),
      g.oneAtATimeVsRedis,
      bytes,
    ),
  );
  add(
    compare(
      section,
      'trellis get (read index, zero-copy view)',
      get('trellis get'),
      'redis GET',
      get('redis GET'),
      g.oneAtATimeVsRedis,
      bytes,
    ),
  );
  add(
    compare(
      section,
      'trellis get, copy: true (read index)',
      get('trellis get, copy: true'),
      'redis GET',
      get('redis GET'),
      g.oneAtATimeVsRedis,
      bytes,
    ),
  );
  add(
    compare(
      section,
      'trellis get over the socket',
      get('trellis get over the socket'),
      'redis GET',
      get('redis GET'),
      g.oneAtATimeVsRedis,
      bytes,
    ),
  );
  add(
    compare(
      section,
      'trellis put, 100 in flight',
      put('trellis put, 100 in flight'),
      'redis pipeline of 100 SETs',
      put('redis pipeline of 100 SETs'),
      g.inFlightVsPipeline,
      bytes,
    ),
  );
  add(
    compare(
      section,
      'trellis get, 100 in flight',
      get('trellis get, 100 in flight'),
      'redis pipeline of 100 GETs',
      get('redis pipeline of 100 GETs'),
      g.inFlightVsPipeline,
      bytes,
    ),
  );
  add(
    compare(
      section,
      'trellis putMany of 100',
      put('trellis putMany of 100'),
      'redis MSET of 100',
      put('redis MSET of 100'),
      g.batchVsMulti,
      bytes,
    ),
  );
  add(
    compare(
      section,
      'trellis getMany of 100',
      get('trellis getMany of 100'),
      'redis MGET of 100',
      get('redis MGET of 100'),
      g.batchVsMulti,
      bytes,
    ),
  );

  const coldSection = 'small Buffers, cold (first operation of a fresh process)';
  for (const [what, result] of [
    ['put', m.puts.cold],
    ['get', m.gets.cold],
  ] as const) {
    const ratio = median(result.trellis) / median(result.redis);
    rows.push(sampleRow(coldSection, `redis first ${what} (baseline)`, result.redis, bytes, ''));
    rows.push(
      sampleRow(coldSection, `trellis first ${what}`, result.trellis, bytes, `${formatRatio(ratio)} Redis's time`),
    );
  }
  return {
    rows,
    targets,
    notes: [
      ...m.notes,
      'rates are per value; "100 in flight" issues 100 single requests without waiting, as a pipeline does',
      'put, put in flight and putMany go through the put ring (docs/put-ring.md): they resolve before the daemon ' +
        'registers the objects, which it does on its own CPU (before its next request, or within about 1 ms); ' +
        '"registered" times 100 ring puts plus one request, which the daemon answers only after registering them; ' +
        '"over the socket" is a connection without a ring (one request per put)',
      `every Buffer got was checked against what was put: ${m.gets.checked ? 'all matched' : 'MISMATCH'}`,
      `Buffers got without copy that were not views of shared memory: ${m.gets.notShared ?? 'not counted'}`,
      `reader's read index at the end: ${m.gets.readIndex ? JSON.stringify(m.gets.readIndex) : 'not mapped'}; ` +
        '"trellis get", "100 in flight" and "getMany" use it (a view pinned by a hold counter, no request), ' +
        '"copy: true" copies the bytes out, "over the socket" is a connection without the index',
    ],
    data: { puts: { drivers: m.puts.drivers, cold: m.puts.cold }, gets: m.gets },
  };
}

export const suite: Suite = {
  name: 'objects-small',
  title: 'small Buffers: put/get one at a time, in flight and batched, against Redis over a UNIX socket and a raw echo',
  async run(context) {
    return report(await measure(context));
  },
};
