/**
 * core's A/B mode (`npm run bench -- core --ab REV_OR_DIR`, see lib/ab.ts): the rows a change to
 * the blob path moves, build against build. Each build gets a daemon of its own (its
 * bin/trellisd) and a writer of that build stores a 1 GiB blob there. Each sample of a build is
 * three fresh processes of that build, placed as the plain run places its clients: one gets the
 * 1 GiB blob (its first get maps a new segment, then steady gets), one runs the 1 KiB
 * create+fill+seal+get+release cycle, one puts 1 GiB (the first put, then steady ones). No
 * memcpy or socket baseline: they would be the same in both builds.
 */
import * as os from 'node:os';
import type { BlobClientCommands } from '../../children/blob-client';
import { abReport, ownCodeCache, runPairs, type AbContext, type AbSample } from '../../lib/ab';
import type { AbBuild } from '../../lib/ab-build';
import { startChild, withChild, type BenchChild } from '../../lib/child';
import { crossCorePlacement, describePlacement } from '../../lib/cpu';
import { startBenchDaemon, type BenchDaemon } from '../../lib/daemon';
import { GiB, KiB } from '../../lib/format';
import type { SampleSet } from '../../lib/sampler';
import { summarize } from '../../lib/stats';
import type { SuiteReport } from '../../lib/suite';

/** 12 pairs of six fresh processes, a few 1 GiB puts each: about ten minutes on this machine at load 12. */
const AB_PLAN = {
  pairs: 12,
  /** Its 1 GiB blob, a 1 GiB put and the segments of the cycle, with room to spare. */
  daemonSize: '3GiB',
  get: { iterations: 300, warmup: 30 },
  cycle: { bytes: KiB, iterations: 300, warmup: 30 },
  put: { bytes: GiB, iterations: 3, warmup: 1 },
};
/** Two daemons start on a machine others load: a start has taken over 20 s there. */
const DAEMON_READY_MS = 60_000;

interface Prepared {
  daemon: BenchDaemon;
  blobId: string;
  /** The build's processes' environment: its own new code cache (ownCodeCache). */
  env: NodeJS.ProcessEnv;
}

const medianMs = (set: SampleSet) => summarize(set.samplesNs).median / 1e6;

async function prepare(context: AbContext, build: AbBuild, serverCpu: number | undefined): Promise<Prepared> {
  const env = ownCodeCache(context, build);
  const daemon = await startBenchDaemon(context.scope, {
    env,
    size: AB_PLAN.daemonSize,
    cpu: serverCpu,
    socket: context.scope.path(`trellisd-${build.label}.sock`),
    buildRoot: build.root,
    readyTimeoutMs: DAEMON_READY_MS,
  });
  context.log(`${build.label}: trellisd pid ${daemon.pid} (${build.root}/bin/trellisd)`);
  // Stays connected for the whole run, as the plain run's writer does while readers get.
  const writer = await startChild<BlobClientCommands>(context.scope, 'blob-client.ts', [daemon.socket], {
    buildRoot: build.root,
    env,
  });
  const [stored] = await writer.call('store', { blobs: [{ bytes: GiB, count: 1 }] });
  return { daemon, blobId: stored.ids[0], env };
}

async function sample(context: AbContext, build: AbBuild, prepared: Prepared, clientCpu?: number): Promise<AbSample> {
  const fresh = <T>(use: (client: BenchChild<BlobClientCommands>) => Promise<T>) =>
    withChild<BlobClientCommands, T>(
      context.scope,
      'blob-client.ts',
      [prepared.daemon.socket],
      { cpu: clientCpu, buildRoot: build.root, env: prepared.env },
      use,
    );
  const get = await fresh((client) => client.call('get', { ids: [prepared.blobId], ...AB_PLAN.get }));
  const { cycle } = await fresh((client) => client.call('cycle', AB_PLAN.cycle));
  const put = await fresh((client) => client.call('put', { ...AB_PLAN.put, daemonPid: prepared.daemon.pid }));
  return {
    'get 1 GiB: first get, a new segment': medianMs(get.first),
    'get 1 GiB: steady get': medianMs(get.steady),
    'create+fill+seal+get+release of 1 KiB': medianMs(cycle),
    'put 1 GiB: first put in a fresh process': medianMs(put.first),
    'put 1 GiB: steady put': medianMs(put.steady),
  };
}

export async function runCoreAb(context: AbContext): Promise<SuiteReport> {
  const placement = crossCorePlacement();
  context.log(describePlacement(placement));
  const prepared = {
    A: await prepare(context, context.builds.A, placement?.serverCpu),
    B: await prepare(context, context.builds.B, placement?.serverCpu),
  };
  const loadBefore = os.loadavg()[0];
  const samples = await runPairs(context, context.pairs ?? AB_PLAN.pairs, (build) =>
    sample(context, build, prepared[build.label], placement?.clientCpu),
  );
  return abReport(context, samples, 'core: blob put and get across processes', [
    `each sample of a build: three fresh processes of it (${describePlacement(placement)}): one gets a 1 GiB blob`,
    `another process stored (the first get, then the median of ${AB_PLAN.get.iterations} more), one runs`,
    `${AB_PLAN.cycle.iterations} 1 KiB cycles (median), one puts 1 GiB (the first, then the median of ` +
      `${AB_PLAN.put.iterations} more, each deleted after).`,
    `1-minute load average ${loadBefore.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end.`,
  ]);
}
