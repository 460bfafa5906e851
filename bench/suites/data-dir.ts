/**
 * data-dir: --data-dir as a user meets it, through a real daemon and client.
 *
 * - persist of a 1 GiB blob (client.persist: its bytes from shared memory to disk, fsync'd, the
 *   catalog committed) against fs write + fsync of the same bytes in the same folder;
 * - a restart with 10,000 small and 10 large persisted objects: from spawning trellisd to its
 *   ready line, against the same on an empty data dir;
 * - the first get of the persisted 1 GiB after that restart (loaded from disk, checksum checked)
 *   against an fs read of the same bytes, both from the disk when the page cache can be dropped
 *   (root); then a later get, against a 1 KiB get.
 */
import * as fs from 'node:fs';
import { connect, type TrellisClient } from '../../src/index';
import { startBenchDaemon, type BenchDaemon } from '../lib/daemon';
import { dropPageCache, readInto, writeAndSync } from '../lib/disk';
import type { Scope } from '../lib/scope';
import { summarize } from '../lib/stats';
import type { Suite, SuiteContext, SuiteReport } from '../lib/suite';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const PLAN = {
  bigBytes: GiB,
  small: 10_000,
  smallBytes: 1024,
  large: 10,
  largeBytes: 8 * MiB,
  trials: 3,
  size: '2GiB',
};
const GOALS = { persist: 0.7, readyMs: 1000, firstGet: 0.7 };

const now = (): number => Number(process.hrtime.bigint());

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = now();
  await run();
  return now() - started;
}

async function startTimed(
  scope: Scope,
  dataDir: string,
): Promise<{ daemon: BenchDaemon; client: TrellisClient; readyNs: number }> {
  const started = now();
  const daemon = await startBenchDaemon(scope, { size: PLAN.size, args: ['--data-dir', dataDir] });
  const readyNs = now() - started;
  return { daemon, client: await connect(daemon.socket), readyNs };
}

async function run({ scope, log }: SuiteContext): Promise<SuiteReport> {
  const persistNs: number[] = [];
  const fsWriteNs: number[] = [];
  const readyFullNs: number[] = [];
  const readyEmptyNs: number[] = [];
  const firstGetNs: number[] = [];
  const fsReadNs: number[] = [];
  const laterGetNs: number[] = [];
  const smallGetNs: number[] = [];
  let dropped = false;
  const bytes = Buffer.alloc(PLAN.bigBytes, 0x3c);
  const into = Buffer.allocUnsafe(PLAN.bigBytes);
  for (let trial = 1; trial <= PLAN.trials; trial++) {
    const dataDir = scope.path(`data-${trial}`);
    const emptyDir = scope.path(`empty-${trial}`);
    const plainFile = scope.path(`plain-${trial}`);
    log(
      `trial ${trial} of ${PLAN.trials}: persist 1 GiB, fill ${PLAN.small} + ${PLAN.large} objects, restart, first get`,
    );
    fsWriteNs.push(await timed(() => writeAndSync(plainFile, bytes)));

    let { daemon, client } = await startTimed(scope, dataDir);
    const writer = await client.createBlob(PLAN.bigBytes);
    writer.buffer.set(bytes);
    const big = await writer.seal();
    let started = now();
    await client.persist(big);
    persistNs.push(now() - started);
    await client.release(big);
    const small: string[] = [];
    for (let i = 0; i < PLAN.small; i += 250) {
      const batch = Array.from({ length: Math.min(250, PLAN.small - i) }, (_, j) =>
        client.put(Buffer.alloc(PLAN.smallBytes, (i + j) & 0xff), { persist: true }),
      );
      small.push(...(await Promise.all(batch)));
    }
    for (let i = 0; i < PLAN.large; i++)
      await client.release(await client.put(Buffer.alloc(PLAN.largeBytes, i), { persist: true }));
    await client.close();
    await daemon.stop();

    const empty = await startTimed(scope, emptyDir);
    readyEmptyNs.push(empty.readyNs);
    await empty.client.close();
    await empty.daemon.stop();

    dropped = dropPageCache();
    ({ daemon, client } = await startTimed(scope, dataDir).then((timed) => (readyFullNs.push(timed.readyNs), timed)));
    started = now();
    await client.getBlob(big);
    firstGetNs.push(now() - started);
    await client.release(big);
    started = now();
    await client.getBlob(big);
    laterGetNs.push(now() - started);
    await client.release(big);
    await client.getBlob(small[0]);
    await client.release(small[0]);
    started = now();
    await client.getBlob(small[1]);
    smallGetNs.push(now() - started);
    await client.close();
    await daemon.stop();

    dropped = dropPageCache() && dropped;
    fsReadNs.push(await timed(() => readInto(plainFile, into)));
    fs.rmSync(plainFile);
  }
  const median = (samples: number[]) => summarize(samples).median;
  const persistRatio = median(fsWriteNs) / median(persistNs);
  const firstGetRatio = median(fsReadNs) / median(firstGetNs);
  const readyMs = median(readyFullNs) / 1e6;
  const where = dropped
    ? 'from the disk (page cache dropped)'
    : 'page cache not dropped (not root): both may come from memory';
  return {
    rows: [
      {
        section: 'baseline (fs, same folder)',
        operation: 'write 1 GiB + fsync',
        bytes: PLAN.bigBytes,
        stats: summarize(fsWriteNs),
      },
      {
        section: 'baseline (fs, same folder)',
        operation: `read 1 GiB, ${where}`,
        bytes: PLAN.bigBytes,
        stats: summarize(fsReadNs),
      },
      {
        section: 'persist',
        operation: 'client.persist of a sealed 1 GiB blob',
        bytes: PLAN.bigBytes,
        stats: summarize(persistNs),
        versus: `${persistRatio.toFixed(2)}x fs write + fsync`,
      },
      { section: 'restart (spawn to ready line)', operation: 'empty data dir', stats: summarize(readyEmptyNs) },
      {
        section: 'restart (spawn to ready line)',
        operation: `${PLAN.small} small + ${PLAN.large} large persisted objects`,
        stats: summarize(readyFullNs),
        versus: `${(median(readyFullNs) / median(readyEmptyNs)).toFixed(2)}x an empty dir`,
      },
      {
        section: 'get after the restart (fresh daemon)',
        operation: `first get of the 1 GiB blob, ${where}`,
        bytes: PLAN.bigBytes,
        stats: summarize(firstGetNs),
        versus: `${firstGetRatio.toFixed(2)}x fs read`,
      },
      {
        section: 'get after the restart (fresh daemon)',
        operation: 'later get of the 1 GiB blob',
        bytes: PLAN.bigBytes,
        stats: summarize(laterGetNs),
        versus: `${(median(laterGetNs) / median(smallGetNs)).toFixed(1)}x a 1 KiB get`,
      },
      {
        section: 'get after the restart (fresh daemon)',
        operation: 'get of a loaded 1 KiB blob',
        bytes: 1024,
        stats: summarize(smallGetNs),
      },
    ],
    targets: [
      {
        target: `persist of 1 GiB >= ${GOALS.persist}x fs write + fsync`,
        measured: `${persistRatio.toFixed(2)}x`,
        met: persistRatio >= GOALS.persist,
      },
      {
        target: `restart with ${PLAN.small} small + ${PLAN.large} large objects ready < ${GOALS.readyMs} ms`,
        measured: `${readyMs.toFixed(0)} ms (spawn to ready, node start included)`,
        met: readyMs < GOALS.readyMs,
      },
      {
        target: `first get of 1 GiB after restart >= ${GOALS.firstGet}x fs read`,
        measured: `${firstGetRatio.toFixed(2)}x`,
        met: firstGetRatio >= GOALS.firstGet,
      },
    ],
    notes: [
      'the client runs in the bench process; each daemon is a separate process started fresh (bin/trellisd, as users run it).',
      `persisted small objects are ${PLAN.smallBytes} B Buffers (kept inline in the catalog), large ones ${PLAN.largeBytes / MiB} MiB (files).`,
    ],
  };
}

export const suite: Suite = {
  name: 'data-dir',
  title: 'data-dir: persist, restart and first get through a real daemon, against fs',
  run,
};
