/**
 * Cluster-unique instance ids, handed out by etcd transactions.
 *
 * An id is taken by creating `instances/<id>` on the daemon's lease, in the same transaction
 * that moves `instance-counter` forward. The transaction only commits if the counter is still
 * what the daemon read (so two daemons starting at once cannot both take the same next id) and
 * the instance key does not exist (so a live daemon's id is never handed out again, even after
 * the counter wraps past 65535). A loser reads again and retries.
 *
 * The counter makes ids grow rather than fill the lowest gap: a new daemon does not inherit the
 * id of one that just died, whose object ids other daemons may still hold.
 */
import { TrellisError } from '../../errors';
import type { EtcdConnection } from './etcd-connection';
import {
  INSTANCE_COUNTER_KEY,
  INSTANCES_PREFIX,
  MAX_INSTANCE_ID,
  MIN_INSTANCE_ID,
  decodeInstanceInfo,
  encodeInstanceInfo,
  instanceIdOfKey,
  instanceKey,
  sameIncarnation,
  type InstanceInfo,
} from './instance-info';

/** Enough for dozens of daemons starting in the same instant; each round, one of them wins. */
const MAX_CLAIM_ATTEMPTS = 200;
const RETRY_JITTER_MS = 15;

interface CounterState {
  last: number;
  /** The counter key's mod revision, '0' when it does not exist (as etcd compares it). */
  modRevision: string;
}

async function readCounter(connection: EtcdConnection): Promise<CounterState> {
  const response = await connection.run('read the instance counter', (kv) => kv.get(INSTANCE_COUNTER_KEY).exec());
  const found = response.kvs[0];
  if (!found) return { last: 0, modRevision: '0' };
  const last = Number(found.value.toString());
  return {
    last: Number.isInteger(last) && last >= 0 && last <= MAX_INSTANCE_ID ? last : 0,
    modRevision: found.mod_revision,
  };
}

/** The next id after `last` (wrapping to 1) that no live instance holds, or undefined if all are held. */
export function nextFreeInstanceId(last: number, taken: ReadonlySet<number>): number | undefined {
  for (let step = 1; step <= MAX_INSTANCE_ID; step++) {
    const candidate = ((last - MIN_INSTANCE_ID + step) % MAX_INSTANCE_ID) + MIN_INSTANCE_ID;
    if (!taken.has(candidate)) return candidate;
  }
  return undefined;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Takes a fresh id and registers `describe(id)` under it, on `leaseId`, in one transaction.
 * Errors: Unavailable, Conflict (every id is held, or the contention never settled).
 */
export async function allocateInstanceId(
  connection: EtcdConnection,
  describe: (instanceId: number) => InstanceInfo,
  leaseId: string,
): Promise<InstanceInfo> {
  for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS; attempt++) {
    const [counter, keys] = await Promise.all([
      readCounter(connection),
      connection.run('list instance ids', (kv) => kv.getAll().prefix(INSTANCES_PREFIX).keys()),
    ]);
    const taken = new Set(keys.map(instanceIdOfKey).filter((id): id is number => id !== undefined));
    const candidate = nextFreeInstanceId(counter.last, taken);
    if (candidate === undefined) {
      throw new TrellisError('Conflict', `no free instance id: all ${MAX_INSTANCE_ID} are held by live daemons`);
    }
    const info = describe(candidate);
    const committed = await connection.run(`claim instance id ${candidate}`, (kv) =>
      kv
        .if(INSTANCE_COUNTER_KEY, 'Mod', '==', counter.modRevision)
        .and(instanceKey(candidate), 'Create', '==', 0)
        .then(
          kv.put(INSTANCE_COUNTER_KEY).value(String(candidate)),
          kv.put(instanceKey(candidate)).value(encodeInstanceInfo(info)).lease(leaseId),
        )
        .commit(),
    );
    if (committed.succeeded) return info;
    await pause(Math.random() * RETRY_JITTER_MS);
  }
  throw new TrellisError(
    'Conflict',
    `could not claim an instance id after ${MAX_CLAIM_ATTEMPTS} attempts: too many daemons joining at once`,
  );
}

export type ReclaimResult = { claimed: true } | { claimed: false; holder: InstanceInfo | undefined };

/**
 * Registers `info` again under its own id on a new lease, after the old lease was lost: takes
 * the key if it is free, or moves it onto the new lease if it still holds this very daemon's
 * info (etcd kept it). Reports the holder if another daemon took the id in the meantime.
 * Errors: Unavailable, Conflict (the contention never settled).
 */
export async function reclaimInstanceId(
  connection: EtcdConnection,
  info: InstanceInfo,
  leaseId: string,
): Promise<ReclaimResult> {
  const key = instanceKey(info.instanceId);
  const value = encodeInstanceInfo(info);
  for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS; attempt++) {
    const [counter, current] = await Promise.all([
      readCounter(connection),
      connection.run(`read instance ${info.instanceId}`, (kv) => kv.get(key).exec()),
    ]);
    const existing = current.kvs[0];
    let committed: boolean;
    if (existing) {
      const holder = decodeInstanceInfo(key, existing.value);
      if (!holder || !sameIncarnation(holder, info)) return { claimed: false, holder };
      const moved = await connection.run(`move instance ${info.instanceId} to a new lease`, (kv) =>
        kv.if(key, 'Mod', '==', existing.mod_revision).then(kv.put(key).value(value).lease(leaseId)).commit(),
      );
      committed = moved.succeeded;
    } else {
      // After etcd lost its data the counter starts again from 0: move it past this id so a
      // daemon joining later does not try it first.
      const created = await connection.run(`reclaim instance id ${info.instanceId}`, (kv) => {
        const puts = [kv.put(key).value(value).lease(leaseId)];
        if (counter.last < info.instanceId) puts.push(kv.put(INSTANCE_COUNTER_KEY).value(String(info.instanceId)));
        return kv
          .if(key, 'Create', '==', 0)
          .and(INSTANCE_COUNTER_KEY, 'Mod', '==', counter.modRevision)
          .then(...puts)
          .commit();
      });
      committed = created.succeeded;
    }
    if (committed) return { claimed: true };
    await pause(Math.random() * RETRY_JITTER_MS);
  }
  throw new TrellisError(
    'Conflict',
    `could not reclaim instance id ${info.instanceId} after ${MAX_CLAIM_ATTEMPTS} attempts`,
  );
}
