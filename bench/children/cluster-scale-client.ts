/**
 * A client of every daemon of one cluster, for the cluster-scale suite (argv: --sockets
 * A,B,...). One process holds a connection to each daemon, so the runner can make all of them
 * publish at once, wait until every one sees what the others published, time reads of remote
 * names, and watch a killed daemon leave every view.
 */
import type { TrellisClient } from '../../src/index';
import { serveCommands } from '../lib/serve-commands';
import { scaleName } from '../suites/cluster-scale/plan';
import { loadTrellis } from '../lib/dist';

const { connect, isTrellisError } = loadTrellis();

const POLL_MS = 25;
/**
 * On a loaded machine etcd can miss the daemon's 2 s call deadline, or a daemon its lease
 * keep-alive (it then registers again). The batch is then made again after a pause (and
 * counted), with override: a transaction that timed out on the daemon's side may still have
 * committed in etcd, leaving names behind.
 */
const PUT_ATTEMPTS = 5;
const RETRY_PAUSE_MS = 500;

export interface ClusterPublishResult {
  /** Wall time from the first putMany call to the last one's reply, over all daemons. */
  wallMs: number;
  /** Each daemon's own publishing time, in --sockets order. */
  perDaemonMs: number[];
  /** putMany calls that failed with Unavailable (etcd slower than the daemon's 2 s deadline) and were made again. */
  retries: number;
}

export interface ReadLatencies {
  remoteGetNameNs: number[];
  localGetNameNs: number[];
  remoteGetMetaNs: number[];
  localGetMetaNs: number[];
}

function argument(flag: string): string {
  const index = process.argv.indexOf(flag);
  if (index < 0 || index + 1 >= process.argv.length) throw new Error(`cluster-scale-client needs ${flag}`);
  return process.argv[index + 1];
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const began = Date.now();
  while (!(await check())) {
    if (Date.now() - began > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return Date.now() - began;
}

async function nameExists(client: TrellisClient, name: string): Promise<boolean> {
  try {
    await client.getName(name);
    return true;
  } catch (error) {
    if (isTrellisError(error) && error.code === 'NameNotFound') return false;
    throw error;
  }
}

/** putMany, made again when it fails with Unavailable; returns how many times it was made again. */
async function putManyRetrying(
  client: TrellisClient,
  values: unknown[],
  options: Array<{ name?: string; persist: boolean }>,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.putMany(values, attempt === 1 ? options : options.map((option) => ({ ...option, override: true })));
      return attempt - 1;
    } catch (error) {
      if (attempt >= PUT_ATTEMPTS || !isTrellisError(error, 'Unavailable')) throw error;
      await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS * attempt));
    }
  }
}

function scaleCommands(clients: Array<TrellisClient | undefined>, instanceIds: number[]) {
  const open = (index: number): TrellisClient => {
    const client = clients[index];
    if (!client) throw new Error(`cluster-scale-client: connection ${index} is closed`);
    return client;
  };
  const living = () => clients.flatMap((client) => (client ? [client] : []));
  return {
    /** The instance id of each daemon, in --sockets order. */
    async instances(_args: Record<string, never>): Promise<number[]> {
      return instanceIds;
    },
    /** Milliseconds until every daemon sees `count` instances alive. */
    async waitForInstances(args: { count: number; timeoutMs: number }): Promise<number> {
      return until(`${args.count} instances alive everywhere`, args.timeoutMs, async () => {
        const views = await Promise.all(living().map((client) => client.clusterInfo()));
        return views.every((view) => view.instances.filter((instance) => instance.alive).length >= args.count);
      });
    },
    /**
     * Every daemon puts `objects` small values, each under its own name (which persists it),
     * `batch` per putMany call; `concurrency` daemons at a time.
     */
    async publish(args: { objects: number; batch: number; concurrency: number }): Promise<ClusterPublishResult> {
      const began = process.hrtime.bigint();
      let retries = 0;
      let next = 0;
      const perDaemonMs: number[] = [];
      const publishOne = async (index: number): Promise<void> => {
        const started = process.hrtime.bigint();
        for (let start = 0; start < args.objects; start += args.batch) {
          const size = Math.min(args.batch, args.objects - start);
          const values = Array.from({ length: size }, (_, i) => ({ k: start + i, note: 'small' }));
          const options = values.map((_, i) => ({ name: scaleName(instanceIds[index], start + i), persist: true }));
          retries += await putManyRetrying(open(index), values, options);
        }
        perDaemonMs[index] = Number(process.hrtime.bigint() - started) / 1e6;
      };
      await Promise.all(
        Array.from({ length: Math.min(args.concurrency, clients.length) }, async () => {
          while (next < clients.length) await publishOne(next++);
        }),
      );
      return { wallMs: Number(process.hrtime.bigint() - began) / 1e6, perDaemonMs, retries };
    },
    /** Persists `count` small values through daemon `index`, without names, `batch` per call. */
    async persistMany(args: { index: number; count: number; batch: number }): Promise<{ ms: number; retries: number }> {
      const began = Date.now();
      let retries = 0;
      for (let start = 0; start < args.count; start += args.batch) {
        const size = Math.min(args.batch, args.count - start);
        const values = Array.from({ length: size }, (_, i) => ({ k: start + i, note: 'small' }));
        retries += await putManyRetrying(
          open(args.index),
          values,
          values.map(() => ({ persist: true })),
        );
      }
      return { ms: Date.now() - began, retries };
    },
    /**
     * Milliseconds until every daemon holds `objects` names of every daemon: first the last
     * name of each (cheap to poll), then one full count per daemon to be sure.
     */
    async waitForAllNames(args: { objects: number; timeoutMs: number }): Promise<number> {
      const last = instanceIds.map((id) => scaleName(id, args.objects - 1));
      const expected = args.objects * instanceIds.length;
      return until(`${expected} names on every daemon`, args.timeoutMs, async () => {
        for (const client of living()) {
          for (const name of last) if (!(await nameExists(client, name))) return false;
        }
        for (const client of living()) {
          if ((await client.listNames({ pattern: 'scale/*' })).length < expected) return false;
        }
        return true;
      });
    },
    /**
     * getName and getMeta through daemon `index`, `samples` times each, of a name another daemon
     * published (remote) and of one it published itself (local).
     */
    async readLatencies(args: { index: number; remoteName: string; samples: number }): Promise<ReadLatencies> {
      const client = open(args.index);
      const localName = scaleName(instanceIds[args.index], 0);
      const time = async (call: () => Promise<unknown>): Promise<number[]> => {
        for (let i = 0; i < Math.min(50, args.samples); i++) await call(); // warm-up
        const samples: number[] = [];
        for (let i = 0; i < args.samples; i++) {
          const began = process.hrtime.bigint();
          await call();
          samples.push(Number(process.hrtime.bigint() - began));
        }
        return samples;
      };
      const remoteId = await client.getName(args.remoteName);
      const localId = await client.getName(localName);
      return {
        remoteGetNameNs: await time(() => client.getName(args.remoteName)),
        localGetNameNs: await time(() => client.getName(localName)),
        remoteGetMetaNs: await time(() => client.getMeta(remoteId)),
        localGetMetaNs: await time(() => client.getMeta(localId)),
      };
    },
    /** Closes the connection to daemon `index` (before the runner kills it). */
    async disconnect(args: { index: number }): Promise<void> {
      await clients[args.index]?.close();
      clients[args.index] = undefined;
    },
    /**
     * Milliseconds until every other daemon shows instance `instanceId` not alive and none of its
     * `objects` names; then checks that a name of every surviving daemon still resolves everywhere.
     */
    async waitForGone(args: { instanceId: number; objects: number; timeoutMs: number }): Promise<number> {
      const deadName = scaleName(args.instanceId, 0);
      const pattern = `scale/${args.instanceId}/*`;
      const goneMs = await until(`instance ${args.instanceId} gone everywhere`, args.timeoutMs, async () => {
        for (const client of living()) {
          const view = await client.clusterInfo();
          if (view.instances.some((instance) => instance.instanceId === args.instanceId && instance.alive))
            return false;
          if (await nameExists(client, deadName)) return false;
          if ((await client.listNames({ pattern })).length > 0) return false;
        }
        return true;
      });
      const survivors = instanceIds.filter((id) => id !== args.instanceId);
      for (const client of living()) {
        for (const id of survivors) {
          if (!(await nameExists(client, scaleName(id, args.objects - 1))))
            throw new Error(`${scaleName(id, args.objects - 1)} went missing after instance ${args.instanceId} died`);
        }
      }
      return goneMs;
    },
  };
}

export type ClusterScaleClientCommands = ReturnType<typeof scaleCommands>;

async function main(): Promise<void> {
  const sockets = argument('--sockets').split(',');
  const clients: Array<TrellisClient | undefined> = await Promise.all(sockets.map((socket) => connect(socket)));
  const instanceIds = await Promise.all(clients.map(async (client) => (await client!.clusterInfo()).instanceId));
  serveCommands(scaleCommands(clients, instanceIds));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
