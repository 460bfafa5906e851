/**
 * A client of one cluster daemon for the cluster-names suite (argv: --socket PATH). Publishes
 * small values under names, batched or one at a time, and waits for names to show up.
 */
import type { TrellisClient } from '../../src/index';
import { serveCommands } from '../lib/serve-commands';
import { loadTrellis } from '../lib/dist';

const { connect } = loadTrellis();

export interface PublishResult {
  /** Nanoseconds per call (one batch, or one put). */
  samplesNs: number[];
  /** Objects each sample covers. */
  perSample: number;
  /** Daemon requests (round trips on the socket) the whole run took. */
  requests: number;
}

function argument(flag: string): string {
  const index = process.argv.indexOf(flag);
  if (index < 0 || index + 1 >= process.argv.length) throw new Error(`cluster-client needs ${flag}`);
  return process.argv[index + 1];
}

function clusterCommands(client: TrellisClient) {
  return {
    /** putMany with a name (which persists) for every value, `batch` values per call. */
    async putManyNamed(args: { prefix: string; count: number; batch: number }): Promise<PublishResult> {
      const before = (await client.status()).requests;
      const samplesNs: number[] = [];
      for (let start = 0; start < args.count; start += args.batch) {
        const size = Math.min(args.batch, args.count - start);
        const values = Array.from({ length: size }, (_, i) => ({ i: start + i, note: 'small' }));
        const options = values.map((_, i) => ({ name: `${args.prefix}/${start + i}`, persist: true }));
        const began = process.hrtime.bigint();
        await client.putMany(values, options);
        samplesNs.push(Number(process.hrtime.bigint() - began));
      }
      return { samplesNs, perSample: args.batch, requests: (await client.status()).requests - before - 1 };
    },
    /** put(value, { name }) one at a time: the object and its name in one etcd transaction each. */
    async putNamedOneByOne(args: { prefix: string; count: number }): Promise<PublishResult> {
      const before = (await client.status()).requests;
      const samplesNs: number[] = [];
      for (let i = 0; i < args.count; i++) {
        const began = process.hrtime.bigint();
        await client.put({ i, note: 'small' }, { name: `${args.prefix}/${i}` });
        samplesNs.push(Number(process.hrtime.bigint() - began));
      }
      return { samplesNs, perSample: 1, requests: (await client.status()).requests - before - 1 };
    },
    /** Milliseconds until listNames(pattern) holds `count` names, polling. */
    async waitForNames(args: { pattern: string; count: number; timeoutMs: number }): Promise<number> {
      const began = Date.now();
      while ((await client.listNames({ pattern: args.pattern })).length < args.count) {
        if (Date.now() - began > args.timeoutMs)
          throw new Error(`${args.pattern}: fewer than ${args.count} names after ${args.timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return Date.now() - began;
    },
  };
}

export type ClusterClientCommands = ReturnType<typeof clusterCommands>;

async function main(): Promise<void> {
  serveCommands(clusterCommands(await connect(argument('--socket'))));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
