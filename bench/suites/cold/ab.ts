/**
 * cold's A/B mode (`npm run bench -- cold --ab REV_OR_DIR`, see lib/ab.ts): each build gets a
 * daemon of its own (its bin/trellisd, its own socket and code cache), and a writer of that build
 * stores the same 1 GiB DataFrame and a 1 KiB blob in it. Each sample of a build is two new
 * processes of that build: one gets the DataFrame (first and again), one connects and gets the
 * blob. No Arrow IPC file baseline: it would be the same in both builds.
 */
import * as os from 'node:os';
import type { ColdReaderCommands, FirstRead, StoreResult } from '../../children/cold-reader';
import { abReport, ownCodeCache, runPairs, type AbContext } from '../../lib/ab';
import type { AbBuild } from '../../lib/ab-build';
import { withChild, type BenchChild } from '../../lib/child';
import { crossCorePlacement, describePlacement } from '../../lib/cpu';
import { startBenchDaemon } from '../../lib/daemon';
import { GiB, KiB } from '../../lib/format';
import type { SuiteReport } from '../../lib/suite';

/** 12 pairs of four new processes: about a minute and a half on this machine. */
/** Two daemons start on a machine others load: a start has taken over 20 s there. */
const DAEMON_READY_MS = 60_000;

const AB_PLAN = { pairs: 12, tableBytes: GiB, smallBlobBytes: KiB, daemonSize: '2GiB' };

interface Prepared {
  socket: string;
  env: NodeJS.ProcessEnv;
  stored: StoreResult;
}

async function prepare(context: AbContext, build: AbBuild, cpus: ReturnType<typeof crossCorePlacement>) {
  const { scope, log } = context;
  // Each build its own code cache (its daemon's, and its clients', written by its writer as in the plain run).
  const env = ownCodeCache(context, build);
  const daemon = await startBenchDaemon(scope, {
    env,
    size: AB_PLAN.daemonSize,
    cpu: cpus?.serverCpu,
    buildRoot: build.root,
    readyTimeoutMs: DAEMON_READY_MS,
  });
  log(`${build.label}: trellisd pid ${daemon.pid} (${build.root}/bin/trellisd) on ${daemon.socket}`);
  const stored = await withChild<ColdReaderCommands, StoreResult>(
    scope,
    'cold-reader.ts',
    ['--socket', daemon.socket],
    { cpu: cpus?.clientCpu, env, buildRoot: build.root },
    (writer) => writer.call('store', { ...AB_PLAN, largeBlobBytes: 0 }),
  );
  return { socket: daemon.socket, env, stored } satisfies Prepared;
}

export async function runColdAb(context: AbContext): Promise<SuiteReport> {
  const placement = crossCorePlacement();
  context.log(describePlacement(placement));
  const prepared = {
    A: await prepare(context, context.builds.A, placement),
    B: await prepare(context, context.builds.B, placement),
  };
  const pairs = context.pairs ?? AB_PLAN.pairs;
  const samples = await runPairs(context, pairs, async (build) => {
    const { socket, env, stored } = prepared[build.label];
    const fresh = (use: (child: BenchChild<ColdReaderCommands>) => Promise<FirstRead>) =>
      withChild<ColdReaderCommands, FirstRead>(
        context.scope,
        'cold-reader.ts',
        ['--socket', socket],
        { cpu: placement?.clientCpu, env, buildRoot: build.root },
        use,
      );
    const table = await fresh((child) => child.call('table', { id: stored.tableId }));
    const blob = await fresh((child) => child.call('blob', { id: stored.smallBlobId }));
    const sample: Record<string, number> = {
      'DataFrame 1 GiB: first get': table.first,
      'DataFrame 1 GiB: first get, reader CPU': table.firstCpu,
      'DataFrame 1 GiB: warm get': table.warm,
      'blob 1 KiB: first getBlob': blob.first,
      'blob 1 KiB: first getBlob, reader CPU': blob.firstCpu,
    };
    // An older child protocol may lack these; runPairs counts a missing metric as NaN.
    if (blob.connect !== undefined) {
      sample['connect()'] = blob.connect;
      sample['connect() + first getBlob'] = blob.connect + blob.first;
    }
    if (blob.connectCpu !== undefined) sample['connect(), reader CPU'] = blob.connectCpu;
    return sample;
  });
  return abReport(context, samples, "cold: a new process's first gets", [
    `each sample of a build: a new process gets the ${AB_PLAN.tableBytes / GiB} GiB DataFrame (first, then warm), and`,
    'another new process connects and gets a 1 KiB blob; apache-arrow loaded before anything is timed (as in cold).',
    `load average ${os.loadavg()[0].toFixed(1)} at the end.`,
  ]);
}
