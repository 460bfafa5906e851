/**
 * objects: typed values across processes. A 1 GiB DataFrame (an apache-arrow Table) got from
 * trellis by a process that did not make it, against a 1 KiB trellis::Value got the same way,
 * and against the two things a Node user would otherwise do to get that Table: read an Arrow
 * IPC file from /dev/shm (readFileSync + tableFromIPC; Node has no mmap) or GET the IPC bytes
 * from a local Redis and decode them. Then the put rate of small plain values, one at a time and
 * batched (putMany), against Redis SET, MSET and a pipeline of SETs from the same process.
 *
 * Placement as in core: trellisd and redis-server on one CPU, every measuring client on the
 * other, so trellis and Redis requests pay the same cross-CPU wake-up.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import type {
  ObjectsClientCommands,
  PutRateResult,
  StoreTableResult,
  TrellisGetResult,
} from '../children/objects-client';
import { measureSocketRoundTrip } from '../lib/baselines';
import { startChild, withChild } from '../lib/child';
import { crossCorePlacement, describePlacement } from '../lib/cpu';
import { startBenchDaemon } from '../lib/daemon';
import { formatBytes } from '../lib/format';
import { startBenchRedis } from '../lib/redis';
import type { Suite, SuiteContext } from '../lib/suite';
import { watchMemory } from './objects/memory';
import { OBJECTS_PLAN, type ObjectsPlan } from './objects/plan';
import { objectsReport, type ObjectsMeasurements } from './objects/report';

const SHM_DIR = '/dev/shm';
const REDIS_KEY = 'bench:table';

async function measureObjects({ scope, log }: SuiteContext, plan: ObjectsPlan): Promise<ObjectsMeasurements> {
  const memory = watchMemory();
  const loadBefore = os.loadavg()[0];
  scope.defer(() => memory.stop());
  const placement = crossCorePlacement();
  const cpu = placement?.clientCpu;
  const daemon = await startBenchDaemon(scope, { size: plan.daemonSize, cpu: placement?.serverCpu });
  const redis = await startBenchRedis(scope, {
    cpu: placement?.serverCpu,
    maxValueBytes: plan.redisMaxValueBytes,
    log,
  });
  log(`trellisd pid ${daemon.pid} (--size ${plan.daemonSize}), ${redis.description}; ${describePlacement(placement)}`);
  const shmDir = fs.mkdtempSync(`${SHM_DIR}/trellis-bench-`);
  scope.defer(() => fs.rmSync(shmDir, { recursive: true, force: true }));
  const ipcFile = `${shmDir}/table.arrow`;
  const both = ['--socket', daemon.socket, '--redis', String(redis.port)];

  log('socket round trip baseline');
  const roundTrip = await measureSocketRoundTrip(scope, plan.roundTrip, placement);

  const putRates = new Map<number, PutRateResult>();
  for (const bytes of plan.putValueBytes) {
    log(
      `put rate of ${bytes} B values: trellis and Redis from one fresh process, ${plan.putRate.rounds} interleaved rounds`,
    );
    putRates.set(
      bytes,
      await withChild<ObjectsClientCommands, PutRateResult>(scope, 'objects-client.ts', both, { cpu }, (child) =>
        child.call('putRate', { valueBytes: bytes, ...plan.putRate }),
      ),
    );
  }

  log(
    `writer process: probing the DataFrame type, then storing a ${formatBytes(plan.tableBytes)} table in trellis, ${ipcFile} and Redis`,
  );
  const writer = await startChild<ObjectsClientCommands>(scope, 'objects-client.ts', both, { cpu });
  const dataFrame = await writer.call('probeDataFrame', undefined);
  if (!dataFrame.available) log(`DataFrame type not available: ${dataFrame.reason}`);
  const value = await writer.call('storeValue', { bytes: plan.valueBytes });
  const stored: StoreTableResult = await writer.call('storeTable', {
    bytes: plan.tableBytes,
    trellis: dataFrame.available,
    ipcFile,
    redisKey: REDIS_KEY,
    redisMaxValueBytes: redis.maxValueBytes,
  });
  // The writer exits and its copies go; trellis keeps what it put.
  await writer.stop();

  log('trellis gets: fresh reader process');
  const gets = await withChild<ObjectsClientCommands, TrellisGetResult>(
    scope,
    'objects-client.ts',
    ['--socket', daemon.socket],
    { cpu },
    (reader) =>
      reader.call('getFromTrellis', {
        valueId: value.id,
        tableId: stored.tableId,
        rows: stored.rows,
        valueGets: plan.trellisGets.value,
        tableGets: plan.trellisGets.table,
        rounds: plan.trellisGets.rounds,
      }),
  );
  log(`readFileSync + tableFromIPC of ${formatBytes(stored.ipcBytes)} from ${SHM_DIR}: fresh process`);
  const file = await withChild<ObjectsClientCommands, Awaited<ReturnType<ObjectsClientCommands['readFromFile']>>>(
    scope,
    'objects-client.ts',
    [],
    { cpu },
    (reader) => reader.call('readFromFile', { file: ipcFile, rows: stored.rows, ...plan.fileLoads }),
  );
  fs.rmSync(ipcFile, { force: true });
  log(`Redis GET + tableFromIPC of ${formatBytes(stored.redisBytes)}: fresh process`);
  const fromRedis = await withChild<ObjectsClientCommands, Awaited<ReturnType<ObjectsClientCommands['getFromRedis']>>>(
    scope,
    'objects-client.ts',
    ['--redis', String(redis.port)],
    { cpu },
    (reader) => reader.call('getFromRedis', { key: REDIS_KEY, rows: stored.redisRows, ...plan.redisLoads }),
  );
  await redis.stop();

  // Deleting what the suite stored and reading the status back doubles as a leak check.
  const daemonAfter = await withChild<ObjectsClientCommands, Awaited<ReturnType<ObjectsClientCommands['status']>>>(
    scope,
    'objects-client.ts',
    ['--socket', daemon.socket],
    { cpu },
    async (client) => {
      await client.call('deleteObjects', { ids: [value.id, ...(stored.tableId ? [stored.tableId] : [])] });
      return client.call('status', undefined);
    },
  );
  await daemon.stop();
  return {
    placement,
    redis: { description: redis.description, version: redis.version, maxValueBytes: redis.maxValueBytes },
    roundTrip,
    putRates,
    dataFrame,
    valueEncodedBytes: value.encodedBytes,
    stored,
    gets,
    file,
    redisLoad: fromRedis,
    daemonAfter,
    memory: memory.stop(),
    loadAverage: { before: loadBefore, after: os.loadavg()[0] },
  };
}

export const suite: Suite = {
  name: 'objects',
  title:
    'get of a 1 GiB DataFrame against a 1 KiB value, an Arrow IPC file and Redis; small-value put rate against Redis',
  async run(context) {
    return objectsReport(OBJECTS_PLAN, await measureObjects(context, OBJECTS_PLAN));
  },
};
