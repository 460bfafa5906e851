/**
 * migrate: copying a 1 GiB object from one daemon to another over loopback TCP, against a plain
 * TCP copy of the same bytes between two Node processes measured in the same run (before and
 * after the trellis trials, pooled). Also a remote client's read of the same object through
 * connectRpc, and a second migrate of a live copy (no bytes move).
 *
 * Placement: the owner daemon and the TCP sender on one CPU, the migrating daemon and the TCP
 * receiver on the other, so both copies cross CPUs the same way. The client that asks for the
 * migrate only waits; it is left unpinned.
 *
 * Memory: the original, one copy at a time on the other daemon, and 2 GiB for the TCP baseline.
 */
import type { MigrateResult, RpcMigrateClientCommands } from '../children/rpc-migrate-client';
import type { TcpCopyCommands } from '../children/tcp-copy';
import { startChild, withChild } from '../lib/child';
import { crossCorePlacement, describePlacement, type Placement } from '../lib/cpu';
import { startBenchDaemon } from '../lib/daemon';
import { formatBytes, formatDuration, formatRatio, GiB } from '../lib/format';
import type { SampleSet } from '../lib/sampler';
import type { Scope } from '../lib/scope';
import { summarize } from '../lib/stats';
import type { Row, Suite, SuiteContext, SuiteReport } from '../lib/suite';

const PLAN = {
  bytes: GiB,
  daemonSize: '3GiB',
  tcp: { iterations: 5, warmup: 1 },
  migrate: { iterations: 5, warmup: 1 },
  rpc: { iterations: 4, warmup: 1 },
};

// The goals.
const TARGET_GB_PER_S = 1;
const TARGET_TCP_FRACTION = 0.5;

interface Measurements {
  tcp: SampleSet[];
  migrate: MigrateResult;
  rpcGet: SampleSet;
  rpcPut: SampleSet;
  placement: Placement | undefined;
}

async function measureTcp(scope: Scope, placement: Placement | undefined): Promise<SampleSet> {
  return withChild<TcpCopyCommands, SampleSet>(
    scope,
    'tcp-copy.ts',
    ['receiver'],
    { cpu: placement?.clientCpu },
    async (receiver) => {
      const port = await receiver.call('listen', { bytes: PLAN.bytes });
      return withChild<TcpCopyCommands, SampleSet>(
        scope,
        'tcp-copy.ts',
        ['sender'],
        { cpu: placement?.serverCpu },
        (sender) => sender.call('send', { port, bytes: PLAN.bytes, ...PLAN.tcp }),
      );
    },
  );
}

async function measure({ scope, log }: SuiteContext): Promise<Measurements> {
  const placement = crossCorePlacement();
  log(`plain TCP copy of ${formatBytes(PLAN.bytes)} (${describePlacement(placement)})`);
  const tcp = [await measureTcp(scope, placement)];

  const owner = await startBenchDaemon(scope, {
    size: PLAN.daemonSize,
    cpu: placement?.serverCpu,
    args: ['--rpc-port', '0', '--instance-id', '1'],
  });
  const migrating = await startBenchDaemon(scope, {
    size: PLAN.daemonSize,
    cpu: placement?.clientCpu,
    args: ['--rpc-port', '0', '--instance-id', '2', '--rpc-peer', `1=${owner.rpcEndpoint}`],
  });
  log(`owner trellisd pid ${owner.pid} at ${owner.rpcEndpoint}, migrating trellisd pid ${migrating.pid}`);
  const client = await startChild<RpcMigrateClientCommands>(scope, 'rpc-migrate-client.ts');
  log(`storing a ${formatBytes(PLAN.bytes)} blob on the owner`);
  const id = await client.call('store', { socket: owner.socket, bytes: PLAN.bytes });
  log(`migrate: first, then ${PLAN.migrate.iterations} more, each copy deleted after`);
  const migrate = await client.call('migrate', { socket: migrating.socket, id, ...PLAN.migrate });
  log('connectRpc get from the owner, then put to it');
  const rpcGet = await client.call('rpcGet', { endpoint: owner.rpcEndpoint!, id, ...PLAN.rpc });
  const rpcPut = await client.call('rpcPut', { endpoint: owner.rpcEndpoint!, bytes: PLAN.bytes, ...PLAN.rpc });
  await client.stop();
  await migrating.stop();
  await owner.stop();

  log('plain TCP copy, again');
  tcp.push(await measureTcp(scope, placement));
  return { tcp, migrate, rpcGet, rpcPut, placement };
}

function report(m: Measurements): SuiteReport {
  const tcpNs = summarize(m.tcp.flatMap((set) => set.samplesNs)).median;
  const median = (set: SampleSet) => summarize(set.samplesNs).median;
  const gbPerS = (ns: number) => PLAN.bytes / ns;
  const versusTcp = (ns: number) => `${formatRatio(tcpNs / ns)} plain TCP speed`;
  const row = (
    section: string,
    operation: string,
    set: SampleSet,
    bytes: number | undefined,
    versus?: string,
  ): Row => ({
    section,
    operation,
    bytes,
    stats: summarize(set.samplesNs),
    faultsPerOp: set.minorFaults / (set.samplesNs.length * set.opsPerSample),
    gcMs: set.gcMs,
    versus,
  });
  const steady = median(m.migrate.steady);
  const rows: Row[] = [
    row('baseline', 'plain TCP copy, net module, 16 MiB writes (before)', m.tcp[0], PLAN.bytes),
    row('baseline', 'plain TCP copy (after)', m.tcp[1], PLAN.bytes, `TCP = ${formatDuration(tcpNs)} (pooled)`),
    row(
      'migrate: daemon to daemon over loopback',
      'steady (segment reused)',
      m.migrate.steady,
      PLAN.bytes,
      versusTcp(steady),
    ),
    row(
      'migrate: daemon to daemon over loopback',
      'first (fresh segment on the copy side)',
      m.migrate.first,
      PLAN.bytes,
      versusTcp(median(m.migrate.first)),
    ),
    row('migrate: daemon to daemon over loopback', 'again, copy alive (no bytes move)', m.migrate.again, undefined),
    row(
      'connectRpc: remote client',
      'getBlob (copied into a fresh local Buffer)',
      m.rpcGet,
      PLAN.bytes,
      versusTcp(median(m.rpcGet)),
    ),
    row(
      'connectRpc: remote client',
      'put of a Buffer (local copy, then uploaded)',
      m.rpcPut,
      PLAN.bytes,
      versusTcp(median(m.rpcPut)),
    ),
  ];
  const after = m.migrate.statusAfter;
  return {
    rows,
    targets: [
      {
        target: `migrate of ${formatBytes(PLAN.bytes)} at least ${TARGET_GB_PER_S} GB/s`,
        measured: `${gbPerS(steady).toFixed(2)} GB/s steady, ${gbPerS(median(m.migrate.first)).toFixed(2)} GB/s first`,
        met: gbPerS(steady) >= TARGET_GB_PER_S,
      },
      {
        target: `migrate at least ${TARGET_TCP_FRACTION}x a plain TCP copy`,
        measured: `${(tcpNs / steady).toFixed(2)}x (TCP ${gbPerS(tcpNs).toFixed(2)} GB/s)`,
        met: tcpNs / steady >= TARGET_TCP_FRACTION,
      },
    ],
    notes: [
      `placement: ${describePlacement(m.placement)}; owner daemon and TCP sender on the server CPU, migrating daemon and TCP receiver on the client CPU`,
      'a migrate is timed from the client request to its reply: metadata read, blob allocated, bytes streamed in 16 MiB readBlobs chunks (4 in flight) straight into shared memory, sealed',
      '"first" also reserves and faults in a fresh 1 GiB segment on the migrating daemon; later copies reuse it (the previous copy is deleted between trials, untimed)',
      `after the trials the migrating daemon holds ${formatBytes(after.memoryUsage)} in ${after.objects} objects (the copies were deleted): nothing leaked`,
    ],
    data: { plan: PLAN, tcpNs, measurements: m },
  };
}

export const suite: Suite = {
  name: 'migrate',
  title: `migrate of a ${formatBytes(PLAN.bytes)} object between two daemons over loopback, against a plain TCP copy`,
  async run(context) {
    return report(await measure(context));
  },
};
