/**
 * fairness: one client putting 1 GiB blobs back to back must not starve another client's 1 KiB
 * gets. The getter's latency is measured quiet, then while the other client puts, in the same
 * run and the same process; the target is a p99 under load below 10x the quiet p99.
 */
import { connect } from '../../src/index';
import type { FairnessClientCommands } from '../children/fairness-client';
import { startChild } from '../lib/child';
import { startBenchDaemon } from '../lib/daemon';
import { formatDuration, formatRatio } from '../lib/format';
import { summarize } from '../lib/stats';
import type { Suite, SuiteContext, SuiteReport } from '../lib/suite';

const KiB = 1024;
const GiB = 1024 * 1024 * 1024;
const PLAN = { smallBytes: KiB, bigBytes: GiB, bigPuts: 10, warmupMs: 2000, quietMs: 5000, daemonSize: '4GiB' };
const TARGET_RATIO = 10;

async function run({ scope, log }: SuiteContext): Promise<SuiteReport> {
  const daemon = await startBenchDaemon(scope, { size: PLAN.daemonSize });
  const control = await connect(daemon.socket);
  scope.defer(() => control.close());
  const id = await control.put(Buffer.alloc(PLAN.smallBytes, 7));

  const getter = await startChild<FairnessClientCommands>(scope, 'fairness-client.ts');
  const putter = await startChild<FairnessClientCommands>(scope, 'fairness-client.ts');
  await getter.call('connect', { socket: daemon.socket });
  await putter.call('connect', { socket: daemon.socket });

  // Untimed: the getter's first gets pay for JIT and its first mappings.
  await getter.call('startGets', { id });
  await new Promise((resolve) => setTimeout(resolve, PLAN.warmupMs));
  await getter.call('stopGets', {});

  log(`quiet: 1 KiB gets for ${PLAN.quietMs / 1000} s`);
  await getter.call('startGets', { id });
  await new Promise((resolve) => setTimeout(resolve, PLAN.quietMs));
  const quiet = summarize(await getter.call('stopGets', {}));

  log(`loaded: 1 KiB gets while another client makes ${PLAN.bigPuts} puts of 1 GiB`);
  await getter.call('startGets', { id });
  const puts = summarize(await putter.call('puts', { bytes: PLAN.bigBytes, count: PLAN.bigPuts }));
  const loaded = summarize(await getter.call('stopGets', {}));
  const ratio = loaded.p99 / quiet.p99;

  return {
    rows: [
      { section: 'getter (warm client, same process in both phases)', operation: 'get 1 KiB, quiet', stats: quiet },
      {
        section: 'getter (warm client, same process in both phases)',
        operation: 'get 1 KiB, during 1 GiB puts',
        stats: loaded,
        versus: `p99 ${formatRatio(ratio)} quiet p99`,
      },
      {
        section: 'putter',
        operation: 'put 1 GiB (createBlob + fill + seal)',
        bytes: PLAN.bigBytes,
        stats: puts,
      },
    ],
    targets: [
      {
        target: `getter p99 during 1 GiB puts < ${TARGET_RATIO}x its quiet p99`,
        measured: formatRatio(ratio),
        met: ratio < TARGET_RATIO,
      },
    ],
    notes: [
      'each put: createBlob(1 GiB) (the daemon reserves or reuses a 1 GiB segment), the putter fills it in place, seal, delete.',
      'a get is timed alone; its release is not. The daemon, getter and putter share the 2 cores (no pinning).',
      `slowest get: ${formatDuration(quiet.max)} quiet, ${formatDuration(loaded.max)} during the puts ` +
        '(the first put reserves a 1 GiB segment: one fallocate, on a worker thread since reserveAhead; later puts reuse it).',
    ],
  };
}

export const suite: Suite = { name: 'fairness', title: 'fairness: 1 KiB gets while another client puts 1 GiB', run };
