/**
 * A trellis client in its own process for the migrate suite: it stores the object on the owner
 * daemon, asks the other daemon to migrate it (timing each migrate from the request to the
 * reply, the daemon's copy included) and reads it through connectRpc, deleting or releasing
 * what each trial made outside the timed sections.
 */
import type { DaemonStatus } from '../../src/index';
import { sample, sampleOnce, type SampleSet } from '../lib/sampler';
import { collectGarbage, serveCommands } from '../lib/serve-commands';
import { loadTrellis } from '../lib/dist';

const { connect, connectRpc } = loadTrellis();

const MiB = 1024 * 1024;

/** Each MiB of the object holds one byte value, so a copy can be checked without the original. */
function patternByte(mib: number): number {
  return (mib * 37 + 0x5a) & 0xff;
}

function checkPattern(bytes: Buffer): void {
  for (let mib = 0; mib * MiB < bytes.length; mib++) {
    const block = bytes.subarray(mib * MiB, Math.min((mib + 1) * MiB, bytes.length));
    const expected = patternByte(mib);
    if (
      block[0] !== expected ||
      block[block.length - 1] !== expected ||
      !block.equals(Buffer.alloc(block.length, expected))
    ) {
      throw new Error(`the copy differs from the original in MiB ${mib}`);
    }
  }
}

export interface MigrateArgs {
  /** The migrating daemon's socket. */
  socket: string;
  id: string;
  iterations: number;
  warmup: number;
}

export interface MigrateResult {
  /** The first migrate: a fresh segment on the migrating daemon (reserved and faulted in). */
  first: SampleSet;
  /** Later migrates, each copy deleted after (untimed): the daemon reuses its segment. */
  steady: SampleSet;
  /** A second migrate of a live copy: no bytes move. */
  again: SampleSet;
  statusAfter: DaemonStatus;
}

export interface RpcGetArgs {
  endpoint: string;
  id: string;
  iterations: number;
  warmup: number;
}

const commands = {
  /** Stores one blob of `bytes` on the daemon at `socket` and returns its id. */
  async store({ socket, bytes }: { socket: string; bytes: number }): Promise<string> {
    const client = await connect(socket);
    const writer = await client.createBlob(bytes);
    for (let mib = 0; mib * MiB < bytes; mib++)
      writer.buffer.fill(patternByte(mib), mib * MiB, Math.min((mib + 1) * MiB, bytes));
    const id = await client.sealBlob(writer);
    await client.close();
    return id;
  },

  async migrate({ socket, id, iterations, warmup }: MigrateArgs): Promise<MigrateResult> {
    const client = await connect(socket);
    const copies: string[] = [];
    const migrate = async () => void copies.push(await client.migrate(id));
    const dropCopy = async () => {
      await client.delete(copies.pop()!);
      collectGarbage();
    };
    const first = await sampleOnce(migrate);
    const copy = await client.getBlob(copies[0]);
    checkPattern(copy.buffer);
    await client.release(copies[0]);
    await dropCopy();
    const steady = await sample(migrate, { iterations, warmup, after: dropCopy });
    await migrate();
    const again = await sample(() => client.migrate(id), { iterations: 20, warmup: 2 });
    await dropCopy();
    const statusAfter = await client.status();
    await client.close();
    return { first, steady, again, statusAfter };
  },

  /** connectRpc + put of `bytes` from a ready Buffer (copied locally, then uploaded), each deleted after (untimed). */
  async rpcPut({
    endpoint,
    bytes,
    iterations,
    warmup,
  }: {
    endpoint: string;
    bytes: number;
    iterations: number;
    warmup: number;
  }): Promise<SampleSet> {
    const client = await connectRpc(endpoint);
    const source = Buffer.alloc(bytes, 0x33);
    const ids: string[] = [];
    const result = await sample(async () => void ids.push(await client.put(source)), {
      iterations,
      warmup,
      after: async () => {
        await client.delete(ids.pop()!);
        collectGarbage();
      },
    });
    await client.close();
    return result;
  },

  /** connectRpc + get of the whole object, each copy released after (untimed). */
  async rpcGet({ endpoint, id, iterations, warmup }: RpcGetArgs): Promise<SampleSet> {
    const client = await connectRpc(endpoint);
    checkPattern((await client.getBlob(id)).buffer);
    await client.release(id);
    const result = await sample(() => client.getBlob(id), {
      iterations,
      warmup,
      after: async () => {
        await client.release(id);
        collectGarbage();
      },
    });
    await client.close();
    return result;
  },
};

export type RpcMigrateClientCommands = typeof commands;

if (require.main === module) serveCommands(commands);
