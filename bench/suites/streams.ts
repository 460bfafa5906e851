/**
 * streams: a ByteStream between two processes, 1 MiB chunks. The writer copies each chunk into
 * shared memory; the reader gets views. Throughput is bytes over the reader's time from its
 * first chunk to the end, against what a user would do instead, a plain UNIX-socket copy of the
 * same chunks between two processes, and against memcpy of a chunk (the copy the writer cannot
 * avoid), all measured in the same run. Every trial starts a fresh writer and reader: their
 * first stream is the cold row (the writer's first touch of the stream's memory included), and a
 * second stream between the same two processes the warm one.
 */
import { connect } from '../../src/index';
import type { SocketCopyCommands } from '../children/socket-copy';
import type { StreamClientCommands, StreamRun } from '../children/stream-client';
import { measureMemcpy } from '../lib/baselines';
import { startChild } from '../lib/child';
import { startBenchDaemon } from '../lib/daemon';
import { summarize } from '../lib/stats';
import type { Suite, SuiteContext, SuiteReport } from '../lib/suite';

const MiB = 1024 * 1024;
const PLAN = { chunkBytes: MiB, chunks: 2048, trials: 3, streamBuffer: '64MiB', daemonSize: '1GiB' };
const GOAL_GB_PER_S = 2;
/** The goal: a chunk written into shared memory once and read in place beats copying it through a socket. */
const GOAL_VS_SOCKET = 2.5;

async function run({ scope, log }: SuiteContext): Promise<SuiteReport> {
  const daemon = await startBenchDaemon(scope, { size: PLAN.daemonSize, args: ['--stream-buffer', PLAN.streamBuffer] });
  const control = await connect(daemon.socket);
  scope.defer(() => control.close());
  const trials: Array<{ writer: StreamRun; reader: StreamRun }> = [];
  const warmTrials: Array<{ writer: StreamRun; reader: StreamRun }> = [];
  for (let trial = 1; trial <= PLAN.trials; trial++) {
    log(`trial ${trial} of ${PLAN.trials}: ${PLAN.chunks} chunks of ${PLAN.chunkBytes / MiB} MiB, cold then warm`);
    const writer = await startChild<StreamClientCommands>(scope, 'stream-client.ts', [], { cpu: 0 });
    const reader = await startChild<StreamClientCommands>(scope, 'stream-client.ts', [], { cpu: 1 });
    for (const runs of [trials, warmTrials]) {
      const { id } = await control.createStream('trellis::ByteStream');
      const reading = reader.call('read', { socket: daemon.socket, id });
      const written = await writer.call('write', {
        socket: daemon.socket,
        id,
        chunkBytes: PLAN.chunkBytes,
        chunks: PLAN.chunks,
      });
      runs.push({ writer: written, reader: await reading });
    }
    await writer.stop();
    await reader.stop();
  }
  const socketCopies = await measureSocketCopy(scope, log);
  const memcpy = (await measureMemcpy(scope, [{ bytes: PLAN.chunkBytes, iterations: 500, opsPerSample: 1 }])).get(
    PLAN.chunkBytes,
  )!;
  const memcpyNs = summarize(memcpy.samplesNs).median;
  const perChunk = trials.map((t) => t.reader.elapsedNs / t.reader.chunks);
  const stats = summarize(perChunk);
  const gbPerS = PLAN.chunkBytes / stats.median;
  const socketStats = summarize(socketCopies.map((run) => (run.elapsedNs * PLAN.chunkBytes) / run.bytes));
  const vsSocket = socketStats.median / stats.median;
  const warmStats = summarize(warmTrials.map((t) => t.reader.elapsedNs / t.reader.chunks));
  const warmVsSocket = socketStats.median / warmStats.median;
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
        section: 'baseline',
        operation: 'plain UNIX-socket copy between two fresh processes (cold), per MiB',
        bytes: PLAN.chunkBytes,
        stats: socketStats,
        versus: `${(PLAN.chunkBytes / socketStats.median).toFixed(2)} GB/s = socket`,
      },
      {
        section: 'ByteStream between two fresh processes (cold; per chunk, median of trials)',
        operation: 'write (copy in) + read (view)',
        bytes: PLAN.chunkBytes,
        stats,
        versus:
          `${gbPerS.toFixed(2)} GB/s, ${vsSocket.toFixed(2)}x socket, ` +
          `${(memcpyNs / stats.median).toFixed(2)}x memcpy speed`,
      },
      {
        section: 'ByteStream, a second stream between the same two processes (warm; per chunk, median of trials)',
        operation: 'write (copy in) + read (view)',
        bytes: PLAN.chunkBytes,
        stats: warmStats,
        versus:
          `${(PLAN.chunkBytes / warmStats.median).toFixed(2)} GB/s, ${warmVsSocket.toFixed(2)}x socket, ` +
          `${(memcpyNs / warmStats.median).toFixed(2)}x memcpy speed`,
      },
    ],
    targets: [
      {
        target: `stream throughput for 1 MiB chunks >= ${GOAL_VS_SOCKET}x a plain UNIX-socket copy (cold)`,
        measured: `${vsSocket.toFixed(2)}x (${gbPerS.toFixed(2)} vs ${(PLAN.chunkBytes / socketStats.median).toFixed(2)} GB/s)`,
        met: vsSocket >= GOAL_VS_SOCKET,
      },
      {
        target: `stream throughput for 1 MiB chunks >= ${GOAL_GB_PER_S} GB/s`,
        measured: `${gbPerS.toFixed(2)} GB/s`,
        met: gbPerS >= GOAL_GB_PER_S,
      },
    ],
    notes: [
      `stream buffer ${PLAN.streamBuffer} (the writer waits beyond it); writer on CPU 0, reader on CPU 1 where taskset exists.`,
      `socket copy: the same ${PLAN.chunks} chunks written with net over a UNIX socket (waiting for drain), placed the same way; ` +
        "its time is the receiver's, from the first bytes to the last, like the stream reader's.",
      `after the runs the daemon holds ${status.memoryUsage} bytes in ${status.objects} objects (chunks are freed once read).`,
    ],
  };
}

/** The same bytes through a plain UNIX socket, in fresh processes placed like the stream's. */
async function measureSocketCopy(scope: SuiteContext['scope'], log: SuiteContext['log']): Promise<StreamRun[]> {
  const runs: StreamRun[] = [];
  for (let trial = 1; trial <= PLAN.trials; trial++) {
    log(`socket copy ${trial} of ${PLAN.trials}`);
    const socket = scope.path(`copy-${trial}.sock`);
    const receiver = await startChild<SocketCopyCommands>(scope, 'socket-copy.ts', [], { cpu: 1 });
    const sender = await startChild<SocketCopyCommands>(scope, 'socket-copy.ts', [], { cpu: 0 });
    await receiver.call('listen', { socket, bytes: PLAN.chunkBytes * PLAN.chunks });
    const receiving = receiver.call('receive', {});
    await sender.call('send', { socket, chunkBytes: PLAN.chunkBytes, chunks: PLAN.chunks });
    runs.push(await receiving);
    await sender.stop();
    await receiver.stop();
  }
  return runs;
}

export const suite: Suite = { name: 'streams', title: 'streams: 1 MiB chunks between two processes', run };
