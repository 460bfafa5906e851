/**
 * One soak run: a daemon, `clients` worker processes doing a seeded mix of requests for the
 * given time while one of them is SIGKILLed and restarted every few seconds, the daemon sampled
 * throughout; then the checks: every worker-owned name holds what the ledger says, memory and
 * objects go back to the baseline once clients are gone and the soak's objects are deleted, and
 * the daemon's private RSS and fd count stayed flat.
 *
 * With `restartDaemonEvery`, the daemon runs on a data dir and is itself SIGKILLed now and then,
 * with every worker frozen mid-request, and started again on that data dir and socket: each
 * restart checks every worker-owned name against the ledger (workers persist what they name)
 * before new worker generations go on. Flatness is then that of the daemons in turn.
 */
import { connect, isTrellisError, type TrellisClient } from '../../src/index';
import { startBenchDaemon } from '../lib/daemon';
import { cpuTimeMs } from '../lib/proc';
import type { Scope } from '../lib/scope';
import { checksum } from './content';
import { flatness, readProbe, type Flatness, type ProbeSample } from './daemon-probe';
import type { WorkerMessage } from './messages';
import { NameLedger } from './name-ledger';
import type { SoakOptions } from './options';
import { Random } from './random';
import { WorkerPool } from './workers';

const STOP_GRACE_MS = 60_000;
const SETTLE_TIMEOUT_MS = 15_000;
const MiB = 1024 * 1024;
/** Flat RSS: the late median at most 20% + 32 MiB over the early one. */
export const RSS_SLACK = { relative: 0.2, absolute: 32 * MiB };
/** Flat fds: the late median at most 16 over the early one (segments come and go with load). */
export const FD_SLACK = { relative: 0, absolute: 16 };

export interface Baseline {
  memoryUsage: number;
  objects: number;
  names: number;
  streams: number;
  clients: number;
  /** The daemon's fds less its segments (each segment holds one fd). */
  fdsLessSegments: number;
}

export interface SoakResult {
  options: SoakOptions;
  runSeconds: number;
  latencies: Map<string, number[]>;
  expected: Map<string, number>;
  unexpected: Array<{ worker: number; kind: string; code: string; message: string }>;
  crashes: Array<{ worker: number; how: string; stderr: string }>;
  hung: number[];
  kills: number;
  bytesWritten: number;
  names: { checked: number; surelyPresent: number; wrong: string[] };
  baseline: Baseline;
  end: Baseline;
  rss: Flatness;
  fds: Flatness;
  samples: ProbeSample[];
  /** CPU time the daemon used while the workers ran (the daemons, with restarts). */
  daemonCpuSeconds: number;
  /** Each daemon restart: time from SIGKILL to ready, and its check of the names. */
  restarts: DaemonRestart[];
}

export interface DaemonRestart {
  readyMs: number;
  names: SoakResult['names'];
}

export async function runSoak(scope: Scope, options: SoakOptions, log: (line: string) => void): Promise<SoakResult> {
  // One version per name, so an object replaced under a name is unpinned and can be deleted.
  const args = ['--keep-versions', '1'];
  if (options.restartDaemonEvery > 0) args.push('--data-dir', scope.path('data'));
  let daemon = await startBenchDaemon(scope, { size: options.size, args });
  let client = await connect(daemon.socket);
  scope.defer(() => client.close().catch(() => undefined));
  const baseline = await measure(client, daemon.pid);
  const restarts: DaemonRestart[] = [];

  const latencies = new Map<string, number[]>();
  const expected = new Map<string, number>();
  const unexpected: SoakResult['unexpected'] = [];
  const crashes: SoakResult['crashes'] = [];
  const ledger = new NameLedger();
  let bytesWritten = 0;
  const onMessage = (worker: number, message: WorkerMessage) => {
    if (message.type === 'stats') {
      for (const [kind, values] of Object.entries(message.latencies)) {
        const all = latencies.get(kind) ?? [];
        for (const value of values) all.push(value);
        latencies.set(kind, all);
      }
      for (const [key, count] of Object.entries(message.expected)) expected.set(key, (expected.get(key) ?? 0) + count);
      for (const failure of message.unexpected) unexpected.push({ worker, ...failure });
      bytesWritten += message.bytesWritten;
    } else if (message.type === 'name-intent') ledger.intent(message.name, message.value);
    else if (message.type === 'name-done') ledger.done(message.name, message.value);
  };
  const pool = new WorkerPool(scope, {
    socket: daemon.socket,
    seed: options.seed,
    maxObjectBytes: options.maxObjectBytes,
    persistNamed: options.restartDaemonEvery > 0,
    onMessage,
    onCrash: (worker, how, stderr) => crashes.push({ worker, how, stderr }),
  });

  log(`starting ${options.clients} clients (seed ${options.seed})`);
  await Promise.all(Array.from({ length: options.clients }, (_, index) => pool.start(index)));
  const started = Date.now();
  let cpuOfEarlierDaemons = 0;
  let cpuAtStart = cpuTimeMs(daemon.pid);
  const elapsed = () => (Date.now() - started) / 1000;
  const samples: ProbeSample[] = [];
  let restarting = false;
  const sampler = setInterval(() => {
    if (!restarting) samples.push(readProbe(daemon.pid, elapsed()));
  }, options.sampleSeconds * 1000);
  const killer = new Random(options.seed ^ 0x5eed);
  let nextKill = options.killEverySeconds;
  let nextRestart = options.restartDaemonEvery;
  let workerKill: Promise<void> = Promise.resolve();
  let nextLog = 30;
  while (elapsed() < options.seconds) {
    await sleep(Math.min(250, Math.max(0, (options.seconds - elapsed()) * 1000)));
    if (options.killEverySeconds > 0 && elapsed() >= nextKill && elapsed() < options.seconds - 1) {
      nextKill += options.killEverySeconds;
      const indexes = pool.indexes();
      if (indexes.length > 0) workerKill = pool.killAndRestart(killer.pick(indexes));
    }
    if (options.restartDaemonEvery > 0 && elapsed() >= nextRestart && elapsed() < options.seconds - 1) {
      nextRestart += options.restartDaemonEvery;
      // A worker being started now would find no daemon: let it be up first.
      await workerKill;
      await pool.freezeAndRestartAll(async () => {
        restarting = true;
        cpuOfEarlierDaemons += cpuTimeMs(daemon.pid) - cpuAtStart;
        const killedAt = Date.now();
        process.kill(daemon.pid, 'SIGKILL');
        await daemon.stop();
        await client.close().catch(() => undefined);
        daemon = await startBenchDaemon(scope, { size: options.size, args, socket: daemon.socket });
        const readyMs = Date.now() - killedAt;
        cpuAtStart = cpuTimeMs(daemon.pid);
        restarting = false;
        client = await connect(daemon.socket);
        const names = await checkNames(client, ledger);
        restarts.push({ readyMs, names });
        log(
          `daemon restart ${restarts.length}: ready in ${readyMs} ms, ${names.wrong.length} of ${names.checked} names wrong`,
        );
      });
    }
    if (elapsed() >= nextLog) {
      nextLog = Math.floor(elapsed() / 30) * 30 + 30;
      const last = samples[samples.length - 1];
      const ops = [...latencies.values()].reduce((total, values) => total + values.length, 0);
      log(
        `${elapsed().toFixed(0)} s: ${ops} requests, ${pool.kills} kills, ${unexpected.length} unexpected, ` +
          `daemon rss ${(last.privateRss / MiB).toFixed(0)} MiB, ${last.fds} fds`,
      );
    }
  }
  const runSeconds = elapsed();
  const daemonCpuSeconds = (cpuOfEarlierDaemons + cpuTimeMs(daemon.pid) - cpuAtStart) / 1000;
  clearInterval(sampler);
  log('stopping clients');
  const hung = await pool.stopAll(STOP_GRACE_MS);

  log('checking names');
  const names = await checkNames(client, ledger);
  log('deleting what the soak made');
  await deleteEverything(client);
  const end = await settle(client, daemon.pid, baseline);
  return {
    options,
    runSeconds,
    latencies,
    expected,
    unexpected,
    crashes,
    hung,
    kills: pool.kills,
    bytesWritten,
    names,
    baseline,
    end,
    rss: flatness(samples, (s) => s.privateRss, RSS_SLACK.relative, RSS_SLACK.absolute),
    fds: flatness(samples, (s) => s.fds, FD_SLACK.relative, FD_SLACK.absolute),
    samples,
    daemonCpuSeconds,
    restarts,
  };
}

async function measure(client: TrellisClient, pid: number): Promise<Baseline> {
  const status = await client.status();
  return {
    memoryUsage: status.memoryUsage,
    objects: status.objects,
    names: status.names,
    streams: status.streams,
    clients: status.clients,
    fdsLessSegments: readProbe(pid, 0).fds - status.segments,
  };
}

/** Every name the workers set holds a value the ledger allows, read back by its sha1. */
async function checkNames(client: TrellisClient, ledger: NameLedger): Promise<SoakResult['names']> {
  const wrong: string[] = [];
  for (const name of ledger.names()) {
    let found: string | undefined;
    try {
      const id = await client.getName(name);
      const value = (await client.get(id)) as Uint8Array;
      found = checksum(value);
      await client.release(id);
    } catch (error) {
      if (!(isTrellisError(error) && error.code === 'NameNotFound')) {
        wrong.push(`${name}: ${(error as Error).message}`);
        continue;
      }
    }
    if (!ledger.allows(name, found)) wrong.push(`${name}: holds ${found ?? 'nothing'}, which no worker set`);
  }
  return { checked: ledger.names().length, surelyPresent: ledger.surelyPresent(), wrong };
}

async function deleteEverything(client: TrellisClient): Promise<void> {
  for (const name of await client.listNames({ pattern: 'soak/*' })) await client.dropName(name);
  for (let round = 0; round < 5; round++) {
    const left = await client.listObjects({ limit: 1_000_000 });
    if (left.length === 0) return;
    for (const { id } of left) {
      try {
        await client.delete(id, { force: true });
      } catch (error) {
        if (!(isTrellisError(error) && error.code === 'ObjectNotFound')) throw error;
      }
    }
  }
}

/** Waits (bounded) for memory, objects and clients to come back to the baseline; returns the last reading. */
async function settle(client: TrellisClient, pid: number, baseline: Baseline): Promise<Baseline> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const now = await measure(client, pid);
    const back =
      now.memoryUsage === baseline.memoryUsage &&
      now.objects === baseline.objects &&
      now.streams === baseline.streams &&
      now.clients === baseline.clients &&
      now.fdsLessSegments <= baseline.fdsLessSegments;
    if (back || Date.now() > deadline) return now;
    await sleep(200);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
