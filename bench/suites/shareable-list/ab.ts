/**
 * shareable-list's A/B mode (`npm run bench -- shareable-list --ab REV_OR_DIR`, see lib/ab.ts):
 * each build gets a daemon of its own (its bin/trellisd, its own socket), and a writer of that
 * build creates and freezes the same 100,000-item list in it. Each sample of a build is two new
 * reader processes of that build: one opens the list and reads every item once, as the plain run's
 * cold rounds do; the other does the same after making the bench's items itself, untimed (the
 * state the array baseline's process is in). No array baseline: it would be the same in both builds.
 */
import * as os from 'node:os';
import type { FirstReadResult, ShareableListCommands } from '../../children/shareable-list-client';
import { abReport, ownCodeCache, runPairs, type AbContext } from '../../lib/ab';
import type { AbBuild } from '../../lib/ab-build';
import { withChild } from '../../lib/child';
import { crossCorePlacement, describePlacement, type Placement } from '../../lib/cpu';
import { startBenchDaemon } from '../../lib/daemon';
import type { SuiteReport } from '../../lib/suite';
import { LIST_PLAN } from './report';

/** 16 pairs of four new processes: about a minute on this machine. */
const AB_PAIRS = 16;
/** Two daemons start on a machine others load: a start has taken over 20 s there. */
const DAEMON_READY_MS = 60_000;

const SCRIPT = 'shareable-list-client.ts';

async function prepare(context: AbContext, build: AbBuild, placement: Placement | undefined) {
  // Each build a new code cache of its own (its daemon's, and its clients', written by its writer).
  const env = ownCodeCache(context, build);
  const daemon = await startBenchDaemon(context.scope, {
    env,
    size: LIST_PLAN.daemonSize,
    cpu: placement?.serverCpu,
    buildRoot: build.root,
    readyTimeoutMs: DAEMON_READY_MS,
  });
  context.log(`${build.label}: trellisd pid ${daemon.pid} (${build.root}/bin/trellisd) on ${daemon.socket}`);
  const created = await withChild<ShareableListCommands, { name: string }>(
    context.scope,
    SCRIPT,
    [daemon.socket],
    { cpu: placement?.clientCpu, env, buildRoot: build.root },
    (writer) => writer.call('create', { count: LIST_PLAN.items }),
  );
  return { socket: daemon.socket, name: created.name, env };
}

export async function runListAb(context: AbContext): Promise<SuiteReport> {
  const placement = crossCorePlacement();
  context.log(describePlacement(placement));
  const prepared = {
    A: await prepare(context, context.builds.A, placement),
    B: await prepare(context, context.builds.B, placement),
  };
  const pairs = context.pairs ?? AB_PAIRS;
  const samples = await runPairs(context, pairs, async (build) => {
    const { socket, name, env } = prepared[build.label];
    const firstRead = (sameStateAsArray: number) =>
      withChild<ShareableListCommands, FirstReadResult>(
        context.scope,
        SCRIPT,
        [socket],
        { cpu: placement?.clientCpu, env, buildRoot: build.root },
        (reader) => reader.call('firstRead', { name, sameStateAsArray }),
      );
    const fresh = await firstRead(0);
    const matched = await firstRead(LIST_PLAN.items);
    const ms = (ns: number) => ns / 1e6;
    return {
      'first open': ms(fresh.firstOpen.samplesNs[0]),
      'first pass': ms(fresh.firstPass.samplesNs[0]),
      'first pass, reader CPU': fresh.firstPassCpuMs,
      'first pass, array-side state': ms(matched.firstPass.samplesNs[0]),
      'first pass, array-side state, reader CPU': matched.firstPassCpuMs,
    };
  });
  return abReport(context, samples, "shareable-list: a new process's first pass over a frozen list", [
    `each sample of a build: a new process opens the ${LIST_PLAN.items}-item list and reads every item once (a full GC,`,
    'untimed, before the pass); another new process does the same after making the bench items itself, untimed',
    '("array-side state": the state of the cold array baseline\'s process). Reader CPU counts every thread.',
    'Each build has a new code cache of its own (src/code-cache.ts), written by its writer, refined by its first readers.',
    `load average ${os.loadavg()[0].toFixed(1)} at the end.`,
  ]);
}
