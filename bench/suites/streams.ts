/**
 * streams: a ByteStream between two processes, 1 MiB chunks. The writer copies each chunk into
 * shared memory; the reader gets views. Throughput is bytes over the reader's time from its
 * first chunk to the end, against memcpy of the same chunks (the copy the writer cannot avoid),
 * measured in the same run.
 */
import { connect } from '../../src/index';
import type { StreamClientCommands, StreamRun } from '../children/stream-client';
import { measureMemcpy } from '../lib/baselines';
import { startChild } from '../lib/child';
import { startBenchDaemon } from '../lib/daemon';
import { summarize } from '../lib/stats';
import type { Suite, SuiteContext, SuiteReport } from '../lib/suite';

const MiB = 1024 * 1024;
const PLAN = { chunkBytes: MiB, chunks: 2048, trials: 3, streamBuffer: '64MiB', daemonSize: '1GiB' };
const GOAL_GB_PER_S = 2;

async function run({ scope, log }: SuiteContext): Promise<SuiteReport> {
  const daemon = await startBenchDaemon(scope, { size: PLAN.daemonSize, args: ['--stream-buffer', PLAN.streamBuffer] });
  const control = await connect(daemon.socket);
  scope.defer(() => control.close());
  const trials: Array<{ writer: StreamRun; reader: StreamRun }> = [];
  for (let trial = 1; trial <= PLAN.trials; trial++) {
    log(`trial ${trial} of ${PLAN.trials}: ${PLAN.chunks} chunks of ${PLAN.chunkBytes / MiB} MiB`);
    const writer = await startChild<StreamClientCommands>(scope, 'stream-client.ts', [], { cpu: 0 });
    const reader = await startChild<StreamClientCommands>(scope, 'stream-client.ts', [], { cpu: 1 });
    const { id } = await control.createStream('trellis::ByteStream');
    const reading = reader.call('read', { socket: daemon.socket, id });
    const written = await writer.call('write', {
      socket: daemon.socket,
      id,
      chunkBytes: PLAN.chunkBytes,
      chunks: PLAN.chunks,
    });
    trials.push({ writer: written, reader: await reading });
    await writer.stop();
    await reader.stop();
  }
  const memcpy = (await measureMemcpy(scope, [{ bytes: PLAN.chunkBytes, iterations: 500, opsPerSample: 1 }])).get(
    PLAN.chunkBytes,
  )!;
  const memcpyNs = summarize(memcpy.samplesNs).median;
  const perChunk = trials.map((t) => t.reader.elapsedNs / t.reader.chunks);
  const stats = summarize(perChunk);
  const gbPerS = PLAN.chunkBytes / stats.median;
  const status = await control.status();
  return {
    rows: [
      {
        section: 'baseline',
        operation: 'memcpy of one chunk (TypedArray.set)',
        bytes: PLAN.chunkBytes,
        stats: summarize(memcpy.samplesNs),
      },
      {
        section: 'ByteStream between two processes (per chunk, median of trials)',
        operation: 'write (copy in) + read (view)',
        bytes: PLAN.chunkBytes,
        stats,
        versus: `${gbPerS.toFixed(2)} GB/s, ${(memcpyNs / stats.median).toFixed(2)}x memcpy speed`,
      },
    ],
    targets: [
      {
        target: `stream throughput for 1 MiB chunks >= ${GOAL_GB_PER_S} GB/s`,
        measured: `${gbPerS.toFixed(2)} GB/s`,
        met: gbPerS >= GOAL_GB_PER_S,
      },
    ],
    notes: [
      `stream buffer ${PLAN.streamBuffer} (the writer waits beyond it); writer on CPU 0, reader on CPU 1 where taskset exists.`,
      `after the runs the daemon holds ${status.memoryUsage} bytes in ${status.objects} objects (chunks are freed once read).`,
    ],
  };
}

export const suite: Suite = { name: 'streams', title: 'streams: 1 MiB chunks between two processes', run };
