/**
 * core: blob put and get latency from 1 KiB to 1 GiB, measured in client processes separate
 * from the daemon (and, for gets, separate from the writer), against memcpy and a bare socket
 * round trip measured in the same run.
 *
 * Placement: the daemon (and the echo server) run on one CPU, measuring clients on another, so
 * every round trip pays the same cross-CPU wake-up (see lib/cpu.ts). A short second pass puts
 * the clients on the daemon's CPU, where a round trip is a context switch, so trellis's own
 * per-request cost is not hidden under the wake-up.
 *
 * Memory stays under about 3 GiB at any moment: memcpy of 1 GiB holds two 1 GiB buffers, a put
 * of 1 GiB holds its source plus the blob, and the blobs kept for gets total about 1.4 GiB. The
 * --spare-segment daemon runs after the first stops: its first segment and spare (1.25 GiB), the
 * put's source, and the next spare if it starts before that daemon stops, about 3.3 GiB at most.
 */
import type { BlobClientCommands, CycleResult, FirstPutResult, GetResult, PutResult } from '../children/blob-client';
import type { SocketEchoCommands } from '../children/socket-echo';
import { measureMemcpy, measureSocketRoundTrip } from '../lib/baselines';
import { startChild, withChild } from '../lib/child';
import { crossCorePlacement, describePlacement, sameCorePlacement, type Placement } from '../lib/cpu';
import { startBenchDaemon } from '../lib/daemon';
import { formatBytes } from '../lib/format';
import type { Suite, SuiteContext } from '../lib/suite';
import { runCoreAb } from './core/ab';
import { CORE_PLAN, type CorePlan } from './core/plan';
import { coreReport, type CoreMeasurements, type PlacementRun } from './core/report';

/** A dashboard page open on /live and a Prometheus scrape every second; returns the stop. */
function watchDaemon(endpoint: string): () => void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const WebSocket = require('ws') as typeof import('ws');
  const page = new WebSocket(`ws://${endpoint}/live`);
  page.on('message', () => undefined);
  page.on('error', () => undefined);
  const scrape = setInterval(
    () =>
      void fetch(`http://${endpoint}/metrics`).then(
        (r) => r.text(),
        () => undefined,
      ),
    1000,
  );
  return () => {
    clearInterval(scrape);
    page.terminate();
  };
}

type StoredBlobs = Array<{ bytes: number; ids: string[] }>;

/** Fresh reader processes get blobs another process wrote; then one fresh process runs the small-blob cycle. */
async function measureReads(
  { scope, log }: SuiteContext,
  plan: CorePlan,
  socket: string,
  stored: StoredBlobs,
  placement: Placement | undefined,
): Promise<Omit<PlacementRun, 'placement' | 'roundTrips'>> {
  const cpu = placement?.clientCpu;
  const gets = new Map<number, GetResult>();
  for (const { bytes, ids } of stored) {
    log(
      `get ${formatBytes(bytes)}: fresh reader process, ${ids.length} distinct id${ids.length > 1 ? 's' : ''} (${describePlacement(placement)})`,
    );
    const result = await withChild<BlobClientCommands, GetResult>(
      scope,
      'blob-client.ts',
      [socket],
      { cpu },
      (reader) => reader.call('get', { ids, ...plan.get }),
    );
    gets.set(bytes, result);
  }
  log(`create+seal+get+release of ${formatBytes(plan.cycle.bytes)}: fresh client process, in rounds with a raw echo`);
  const echo = await startChild<SocketEchoCommands>(scope, 'socket-echo.ts', ['server'], {
    cpu: placement?.serverCpu,
  });
  const echoSocket = scope.path('cycle-echo.sock');
  await echo.call('listen', { socket: echoSocket });
  const { cycle, echo: cycleEcho } = await withChild<BlobClientCommands, CycleResult>(
    scope,
    'blob-client.ts',
    [socket],
    { cpu },
    (client) =>
      client.call('cycle', {
        ...plan.cycle,
        echo: { socket: echoSocket, messageBytes: plan.roundTrip.messageBytes },
      }),
  );
  await echo.stop();
  return { gets, cycle, cycleEcho };
}

async function measureCore(context: SuiteContext, plan: CorePlan): Promise<CoreMeasurements> {
  const { scope, log } = context;
  const cross = crossCorePlacement();
  // TRELLIS_BENCH_HTTP=1: the same run with the dashboard open and /metrics scraped every second.
  const watched = process.env.TRELLIS_BENCH_HTTP === '1';
  const daemon = await startBenchDaemon(scope, {
    size: plan.daemonSize,
    cpu: cross?.serverCpu,
    args: watched ? ['--http-port', '0'] : [],
  });
  log(
    `trellisd pid ${daemon.pid} (--size ${plan.daemonSize}); ${describePlacement(cross)}${watched ? `; watched on ${daemon.httpEndpoint}` : ''}`,
  );
  if (watched) scope.defer(watchDaemon(daemon.httpEndpoint!));
  const warmMs = await withChild<BlobClientCommands, number>(scope, 'blob-client.ts', [daemon.socket], {}, (client) =>
    client.call('untilWarm', { timeoutMs: 30_000 }),
  );
  log(`first segment reserved ${Math.round(warmMs)} ms after the daemon's first client connected`);

  log('socket round trip baseline');
  const roundTrips = [await measureSocketRoundTrip(scope, plan.roundTrip, cross)];
  log('memcpy baseline');
  const memcpy = await measureMemcpy(
    scope,
    plan.sizes.map(({ bytes, memcpy }) => ({ bytes, ...memcpy })),
    cross?.clientCpu,
  );

  const puts = new Map<number, PutResult>();
  for (const { bytes, put } of plan.sizes) {
    log(`put ${formatBytes(bytes)}: fresh client process`);
    const result = await withChild<BlobClientCommands, PutResult>(
      scope,
      'blob-client.ts',
      [daemon.socket],
      { cpu: cross?.clientCpu },
      (client) => client.call('put', { bytes, ...put, daemonPid: daemon.pid }),
    );
    puts.set(bytes, result);
  }
  // What a user meets with a daemon that has been running: its first put finds the memory an
  // earlier object left (the daemon keeps empty segments), not a new segment from the OS.
  const reusedPuts = new Map<number, FirstPutResult>();
  for (const { bytes } of plan.sizes) {
    log(`put ${formatBytes(bytes)}: another fresh client process, into memory the daemon holds`);
    const result = await withChild<BlobClientCommands, FirstPutResult>(
      scope,
      'blob-client.ts',
      [daemon.socket],
      { cpu: cross?.clientCpu },
      (client) => client.call('firstPut', { bytes }),
    );
    reusedPuts.set(bytes, result);
  }

  // One process writes every blob that others get, and stays connected while they read.
  log('storing blobs for the get trials: writer process');
  const writer = await startChild<BlobClientCommands>(scope, 'blob-client.ts', [daemon.socket], {
    cpu: cross?.clientCpu,
  });
  // Largest first: the 1 GiB blob takes the empty 1 GiB segment the put trials left, where a
  // 256 MiB blob stored before it would have landed (smallest segment that fits) and sent the
  // 1 GiB blob to a second new one.
  const toStore = plan.sizes.map(({ bytes, getCopies }) => ({ bytes, count: getCopies })).reverse();
  const stored = (await writer.call('store', { blobs: toStore })).sort((a, b) => a.bytes - b.bytes);

  const crossReads = await measureReads(context, plan, daemon.socket, stored, cross);
  log('socket round trip baseline, again');
  roundTrips.push(await measureSocketRoundTrip(scope, plan.roundTrip, cross));
  const crossCore: PlacementRun = { placement: cross, roundTrips, ...crossReads };

  let sameCore: PlacementRun | undefined;
  if (cross) {
    const same = sameCorePlacement(cross);
    log(`same-CPU pass (${describePlacement(same)})`);
    const sameRoundTrip = await measureSocketRoundTrip(scope, plan.roundTrip, same);
    const sameStored = stored.filter(({ bytes }) => plan.sameCoreGetSizes.includes(bytes));
    sameCore = {
      placement: same,
      roundTrips: [sameRoundTrip],
      ...(await measureReads(context, plan, daemon.socket, sameStored, same)),
    };
  }

  // Deleting everything and reading the status back doubles as a leak check.
  await writer.call('deleteBlobs', { ids: stored.flatMap(({ ids }) => ids) });
  const daemonAfter = await writer.call('status', undefined);
  await writer.stop();
  await daemon.stop();
  const sparePut = await measureSparePut(context, plan, cross?.serverCpu, cross?.clientCpu);
  return { memcpy, puts, reusedPuts, sparePut, crossCore, sameCore, daemonAfter };
}

/**
 * The first put of the largest size in a fresh process, on a new daemon started with
 * --spare-segment of that size: the spare is reserved (new memory from the OS) before the put,
 * as on a daemon that has been running; the put takes it, and the next spare comes a second later.
 */
async function measureSparePut(
  { scope, log }: SuiteContext,
  plan: CorePlan,
  serverCpu: number | undefined,
  clientCpu: number | undefined,
): Promise<FirstPutResult> {
  const bytes = Math.max(...plan.sizes.map((size) => size.bytes));
  const daemon = await startBenchDaemon(scope, {
    size: plan.daemonSize,
    cpu: serverCpu,
    socket: scope.path('trellisd-spare.sock'),
    args: ['--spare-segment', String(bytes)],
  });
  log(`put ${formatBytes(bytes)}: fresh client process, new daemon with --spare-segment ${formatBytes(bytes)}`);
  const readyMs = await withChild<BlobClientCommands, number>(scope, 'blob-client.ts', [daemon.socket], {}, (client) =>
    client.call('untilSpare', { bytes, timeoutMs: 60_000 }),
  );
  log(`spare segment ready ${Math.round(readyMs)} ms after the daemon's first client connected`);
  const result = await withChild<BlobClientCommands, FirstPutResult>(
    scope,
    'blob-client.ts',
    [daemon.socket],
    { cpu: clientCpu },
    (client) => client.call('firstPut', { bytes }),
  );
  await daemon.stop();
  return result;
}

export const suite: Suite = {
  name: 'core',
  title: 'blob put/get across processes, 1 KiB to 1 GiB, against memcpy and a bare socket round trip',
  async run(context) {
    return coreReport(CORE_PLAN, await measureCore(context, CORE_PLAN));
  },
  runAb: runCoreAb,
};
