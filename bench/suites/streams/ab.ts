/**
 * streams' A/B mode (`npm run bench -- streams --ab REV_OR_DIR`, see lib/ab.ts): each build gets a
 * daemon of its own (its bin/trellisd, the plain run's --stream-buffer). Each sample of a build is
 * a fresh writer and reader of that build, placed as in the plain run, streaming 1 GiB in 1 MiB
 * chunks twice: the first stream (cold) and a second one between the same processes (warm). Per
 * GiB, a sample gives the reader's time, the CPU of the writer, the reader and the daemon, the
 * requests, and the writer's and reader's page faults: where a stream's time goes, build against
 * build. No socket-copy baseline: it would be the same in both builds.
 */
import * as os from 'node:os';
import type { StreamClientCommands, StreamRun } from '../../children/stream-client';
import { abReport, ownCodeCache, runPairs, type AbContext, type AbSample } from '../../lib/ab';
import type { AbBuild } from '../../lib/ab-build';
import { startChild } from '../../lib/child';
import { startBenchDaemon, type BenchDaemon } from '../../lib/daemon';
import { GiB } from '../../lib/format';
import { cpuTimeMs } from '../../lib/proc';
import type { SuiteReport } from '../../lib/suite';
import { STREAM_PLAN } from './plan';

/** 15 pairs of two fresh processes streaming 2 GiB: about three minutes on this machine, loaded. */
const AB_PAIRS = 15;
/** Two daemons start on a machine others load: a start has taken over 20 s there. */
const DAEMON_READY_MS = 60_000;

/** What one stream cost, per GiB streamed. */
function perGiB(label: string, writer: StreamRun, reader: StreamRun, daemonCpuMs: number, requests: number): AbSample {
  const gib = reader.bytes / GiB;
  const writerCpuMs = (writer.cpuUs ?? NaN) / 1000;
  const readerCpuMs = (reader.cpuUs ?? NaN) / 1000;
  return {
    [`${label}: reader time`]: reader.elapsedNs / 1e6 / gib,
    // What bounds the throughput when the three processes share 2 loaded cores; steadier than time.
    [`${label}: CPU of all three`]: (writerCpuMs + readerCpuMs + daemonCpuMs) / gib,
    [`${label}: writer CPU`]: writerCpuMs / gib,
    [`${label}: reader CPU`]: readerCpuMs / gib,
    [`${label}: daemon CPU`]: daemonCpuMs / gib,
    [`${label}: requests`]: requests / gib,
    [`${label}: writer page faults`]: (writer.minorFaults ?? NaN) / gib,
    [`${label}: reader page faults`]: (reader.minorFaults ?? NaN) / gib,
  };
}

/** A fresh writer and reader of `build` stream twice, cold then warm. */
async function sample(
  context: AbContext,
  build: AbBuild,
  daemon: BenchDaemon,
  env: NodeJS.ProcessEnv,
): Promise<AbSample> {
  const { socket } = daemon;
  const options = { buildRoot: build.root, env };
  const writer = await startChild<StreamClientCommands>(context.scope, 'stream-client.ts', [], { ...options, cpu: 0 });
  const reader = await startChild<StreamClientCommands>(context.scope, 'stream-client.ts', [], { ...options, cpu: 1 });
  const result: AbSample = {};
  for (const label of ['cold', 'warm']) {
    const before = await writer.call('requests', { socket });
    const daemonCpuBefore = cpuTimeMs(daemon.pid);
    const id = await writer.call('create', { socket });
    const reading = reader.call('read', { socket, id });
    const { chunkBytes, chunks } = STREAM_PLAN;
    const written = await writer.call('write', { socket, id, chunkBytes, chunks });
    const read = await reading;
    const daemonCpuMs = cpuTimeMs(daemon.pid) - daemonCpuBefore;
    // Less the createStream and this call (counted in its own answer).
    const requests = (await writer.call('requests', { socket })) - before - 2;
    Object.assign(result, perGiB(label, written, read, daemonCpuMs, requests));
  }
  await writer.stop();
  await reader.stop();
  return result;
}

export async function runStreamsAb(context: AbContext): Promise<SuiteReport> {
  const daemons: Record<'A' | 'B', BenchDaemon> = {} as Record<'A' | 'B', BenchDaemon>;
  // Each build a new code cache of its own (its daemon's and its clients'), as ownCodeCache says why.
  const envs = { A: ownCodeCache(context, context.builds.A), B: ownCodeCache(context, context.builds.B) };
  for (const build of [context.builds.A, context.builds.B]) {
    daemons[build.label] = await startBenchDaemon(context.scope, {
      env: envs[build.label],
      size: STREAM_PLAN.daemonSize,
      socket: context.scope.path(`trellisd-${build.label}.sock`),
      args: ['--stream-buffer', STREAM_PLAN.streamBuffer],
      buildRoot: build.root,
      readyTimeoutMs: DAEMON_READY_MS,
    });
    context.log(`${build.label}: trellisd pid ${daemons[build.label].pid} (${build.root}/bin/trellisd)`);
  }
  const loadBefore = os.loadavg()[0];
  const samples = await runPairs(context, context.pairs ?? AB_PAIRS, (build) =>
    sample(context, build, daemons[build.label], envs[build.label]),
  );
  const counts = samples.metrics.filter((metric) => metric.endsWith('requests') || metric.endsWith('page faults'));
  return abReport(
    context,
    samples,
    `streams: ${STREAM_PLAN.chunks} chunks of ${STREAM_PLAN.chunkBytes / 2 ** 20} MiB, per GiB`,
    [
      'each sample of a build: a fresh writer (CPU 0) and reader (CPU 1) of that build stream the bytes twice, the first',
      'stream (cold: the writer touches new memory) and a second between the same processes (warm); every metric is per',
      'GiB streamed. reader time: from its first chunk to the end, as in the plain run. CPU: user + system, the',
      "daemon's from /proc (10 ms ticks). requests: all the daemon answered for the stream; page faults: minor.",
      `1-minute load average ${loadBefore.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end.`,
    ],
    { counts },
  );
}
