/**
 * objects-small's A/B mode (`npm run bench -- objects-small --ab REV_OR_DIR`, see lib/ab.ts): each
 * build gets a daemon of its own (its bin/trellisd on its own socket), and a process of that build
 * stores the values readers get. Each sample of a build is two new processes of that build: a
 * writer (its first put, then warm puts) and a reader (its first get, then warm gets), trellis
 * only (bench/children/small-values-ab.ts): Redis and the raw echo would be the same in both.
 */
import * as os from 'node:os';
import type { AbRateArgs, SmallValuesAbCommands } from '../../children/small-values-ab';
import { abReport, ownCodeCache, runPairs, type AbContext } from '../../lib/ab';
import type { AbBuild } from '../../lib/ab-build';
import { withChild } from '../../lib/child';
import { crossCorePlacement, describePlacement } from '../../lib/cpu';
import { startBenchDaemon } from '../../lib/daemon';
import type { SuiteReport } from '../../lib/suite';

/** 12 pairs of four new processes. */
const AB_PLAN = {
  pairs: 12,
  keep: 1000,
  rate: {
    valueBytes: 100,
    // Warm: after 10,000 puts or gets one at a time and 6,000 in batches (see `steady` in the child).
    single: { iterations: 40, warmup: 200, opsPerSample: 50 },
    batch: { iterations: 30, warmup: 60, batchSize: 100 },
    socket: { iterations: 20, warmup: 20, opsPerSample: 50 },
  } satisfies AbRateArgs,
};

export async function runObjectsSmallAb(context: AbContext): Promise<SuiteReport> {
  const { scope, log } = context;
  const placement = crossCorePlacement();
  log(describePlacement(placement));
  const prepare = async (build: AbBuild) => {
    // Each build a new code cache of its own, for its daemon too, written by these first processes.
    const env = ownCodeCache(context, build);
    const daemon = await startBenchDaemon(scope, {
      env,
      size: '1GiB',
      cpu: placement?.serverCpu,
      buildRoot: build.root,
      readyTimeoutMs: 60_000,
    });
    log(`${build.label}: trellisd pid ${daemon.pid} (${build.root}/bin/trellisd) on ${daemon.socket}`);
    const args = ['--socket', daemon.socket];
    const ids = await withChild<SmallValuesAbCommands, { ids: string[]; tensorIds: string[] }>(
      scope,
      'small-values-ab.ts',
      args,
      { cpu: placement?.clientCpu, env, buildRoot: build.root },
      async (child) => ({
        ids: await child.call('store', { valueBytes: AB_PLAN.rate.valueBytes, count: AB_PLAN.keep }),
        tensorIds: await child.call('storeTensors', { valueBytes: AB_PLAN.rate.valueBytes, count: AB_PLAN.keep }),
      }),
    );
    return { args, env, ...ids };
  };
  const prepared = { A: await prepare(context.builds.A), B: await prepare(context.builds.B) };
  const samples = await runPairs(context, context.pairs ?? AB_PLAN.pairs, async (build) => {
    const { args, env, ids, tensorIds } = prepared[build.label];
    const fresh = (use: Parameters<typeof withChild<SmallValuesAbCommands, Record<string, number>>>[4]) =>
      withChild(scope, 'small-values-ab.ts', args, { cpu: placement?.clientCpu, env, buildRoot: build.root }, use);
    const writer = await fresh((child) => child.call('writer', AB_PLAN.rate));
    const reader = await fresh((child) => child.call('reader', { ...AB_PLAN.rate, ids, tensorIds }));
    return { ...writer, ...reader };
  });
  return abReport(
    context,
    samples,
    `objects-small: ${AB_PLAN.rate.valueBytes} B Buffers and Float64Arrays of ${Math.ceil(AB_PLAN.rate.valueBytes / 8) * 8} B`,
    [
      'each sample of a build: a new writer process (first put, then warm puts) and a new reader process (first get',
      `of what the setup stored, then warm gets); warm: medians of ${AB_PLAN.rate.single.iterations} samples of ` +
        `${AB_PLAN.rate.single.opsPerSample} operations or ${AB_PLAN.rate.batch.iterations} batches of ` +
        `${AB_PLAN.rate.batch.batchSize} in that process, per value, after ` +
        `${AB_PLAN.rate.single.warmup * AB_PLAN.rate.single.opsPerSample} operations or ` +
        `${AB_PLAN.rate.batch.warmup} batches through the same timed loop (over the socket: ` +
        `${AB_PLAN.rate.socket.iterations} samples after ${AB_PLAN.rate.socket.warmup * AB_PLAN.rate.socket.opsPerSample}).`,
      `load average ${os.loadavg()[0].toFixed(1)} at the end.`,
    ],
  );
}
