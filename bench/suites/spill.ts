/**
 * spill: a 1 GiB blob moved out of shared memory under pressure (--spill-dir) and loaded back,
 * against writing and reading the same bytes with `fs` on the same file system in the same run
 * (both through the page cache: spill files are scratch and never fsync'd). While the spill
 * runs, another client gets a 1 KiB blob over and over; its latencies are set against the same
 * loop on a quiet daemon. Each trial starts a fresh daemon (a cold process, as users meet it).
 */
import * as fs from 'node:fs';
import { connect, type TrellisClient } from '../../src/index';
import { startBenchDaemon } from '../lib/daemon';
import { summarize } from '../lib/stats';
import type { Suite, SuiteContext, SuiteReport } from '../lib/suite';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const PLAN = { blobBytes: GiB, daemonSize: '1536MiB', trials: 4, quietGets: 2000 };
const GOAL_DISK_RATIO = 0.5;
const GOAL_LATENCY_RATIO = 10;

const now = (): number => Number(process.hrtime.bigint());

/** Gets and releases a 1 KiB blob until `until` says stop; returns each get's latency (ns). */
async function getLoop(client: TrellisClient, id: string, until: () => boolean, max: number): Promise<number[]> {
  const samples: number[] = [];
  while (!until() && samples.length < max) {
    const started = now();
    await client.getBlob(id);
    samples.push(now() - started);
    await client.release(id);
  }
  return samples;
}

async function fsBaseline(file: string, bytes: Buffer): Promise<{ writeNs: number; readNs: number }> {
  const startedWrite = now();
  await fs.promises.writeFile(file, bytes);
  const writeNs = now() - startedWrite;
  const into = Buffer.allocUnsafe(bytes.length);
  const startedRead = now();
  const handle = await fs.promises.open(file, 'r');
  await handle.read(into, 0, into.length, 0);
  await handle.close();
  const readNs = now() - startedRead;
  await fs.promises.rm(file);
  return { writeNs, readNs };
}

async function run({ scope, log }: SuiteContext): Promise<SuiteReport> {
  const spillNs: number[] = [];
  const reloadNs: number[] = [];
  const baseline = { write: [] as number[], read: [] as number[] };
  const quiet: number[] = [];
  const during: number[] = [];
  const bytes = Buffer.alloc(PLAN.blobBytes, 0x5a);
  for (let trial = 1; trial <= PLAN.trials; trial++) {
    log(`trial ${trial} of ${PLAN.trials}: fs baseline, then a fresh daemon spills and reloads 1 GiB`);
    const spillDir = scope.path(`spill-${trial}`);
    fs.mkdirSync(spillDir);
    const fsRun = await fsBaseline(`${spillDir}/baseline`, bytes);
    baseline.write.push(fsRun.writeNs);
    baseline.read.push(fsRun.readNs);

    const daemon = await startBenchDaemon(scope, { size: PLAN.daemonSize, args: ['--spill-dir', spillDir] });
    const writer = await connect(daemon.socket);
    const reader = await connect(daemon.socket);
    try {
      const small = await reader.put(Buffer.alloc(1024, 1));
      await reader.release(small);
      quiet.push(...(await getLoop(reader, small, () => false, PLAN.quietGets)));

      const big = await writer.createBlob(PLAN.blobBytes);
      writer.isSharedMemory(big.buffer);
      big.buffer.fill(0x5a);
      const bigId = await big.seal();
      await writer.release(bigId);

      // A second 1 GiB blob does not fit beside the first: the first is spilled to make room.
      // The last trial runs the other client's get loop during the spill (its latencies); the
      // others time the spill alone, since on 2 cores that loop takes CPU from the write.
      const measureLatency = trial === PLAN.trials;
      let spilled = false;
      const loop = measureLatency ? getLoop(reader, small, () => spilled, 1_000_000) : Promise.resolve([]);
      const startedSpill = now();
      const second = await writer.createBlob(PLAN.blobBytes);
      if (!measureLatency) spillNs.push(now() - startedSpill);
      spilled = true;
      during.push(...(await loop));
      await second.abort();

      const startedReload = now();
      await writer.getBlob(bigId);
      reloadNs.push(now() - startedReload);
      await writer.release(bigId);
    } finally {
      await writer.close();
      await reader.close();
      await daemon.stop();
    }
  }
  const median = (samples: number[]) => summarize(samples).median;
  const spillRatio = median(baseline.write) / median(spillNs);
  const reloadRatio = median(baseline.read) / median(reloadNs);
  const quietStats = summarize(quiet);
  const duringStats = summarize(during);
  const latencyRatio = duringStats.p99 / quietStats.p99;
  return {
    rows: [
      {
        section: 'baseline (fs, same file system, page cache)',
        operation: 'write 1 GiB (fs.promises.writeFile)',
        bytes: PLAN.blobBytes,
        stats: summarize(baseline.write),
      },
      {
        section: 'baseline (fs, same file system, page cache)',
        operation: 'read 1 GiB (FileHandle.read)',
        bytes: PLAN.blobBytes,
        stats: summarize(baseline.read),
      },
      {
        section: 'spill (fresh daemon each trial)',
        operation: 'createBlob(1 GiB) that spills a 1 GiB blob first',
        bytes: PLAN.blobBytes,
        stats: summarize(spillNs),
        versus: `${spillRatio.toFixed(2)}x fs write`,
      },
      {
        section: 'spill (fresh daemon each trial)',
        operation: 'getBlob of the spilled 1 GiB blob (reload)',
        bytes: PLAN.blobBytes,
        stats: summarize(reloadNs),
        versus: `${reloadRatio.toFixed(2)}x fs read`,
      },
      { section: 'another client: getBlob of 1 KiB', operation: 'quiet daemon', bytes: 1024, stats: quietStats },
      {
        section: 'another client: getBlob of 1 KiB',
        operation: 'while the 1 GiB spill runs',
        bytes: 1024,
        stats: duringStats,
        versus: `p99 ${latencyRatio.toFixed(1)}x quiet p99`,
      },
    ],
    targets: [
      {
        target: `spill of 1 GiB >= ${GOAL_DISK_RATIO}x fs write speed`,
        measured: `${spillRatio.toFixed(2)}x`,
        met: spillRatio >= GOAL_DISK_RATIO,
      },
      {
        target: `reload of 1 GiB >= ${GOAL_DISK_RATIO}x fs read speed`,
        measured: `${reloadRatio.toFixed(2)}x`,
        met: reloadRatio >= GOAL_DISK_RATIO,
      },
      {
        target: `1 KiB get p99 during a spill < ${GOAL_LATENCY_RATIO}x its quiet p99`,
        measured: `${latencyRatio.toFixed(1)}x (${during.length} gets during the spills)`,
        met: latencyRatio < GOAL_LATENCY_RATIO,
      },
    ],
    notes: [
      'the spill row includes allocating the new 1 GiB blob; the reload row includes allocating room and the first touch of its pages.',
      "the spill is timed alone in all trials but the last, which runs the other client's get loop during its spill instead.",
      'both clients run in the bench process; the daemon is a separate process started fresh each trial.',
    ],
  };
}

export const suite: Suite = { name: 'spill', title: 'spill: 1 GiB out to --spill-dir and back, against fs', run };
