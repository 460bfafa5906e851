/**
 * A fairness client in its own process: `node fairness-client.ts`. As the getter it times 1 KiB
 * gets in a loop between `startGets` and `stopGets`; as the putter it puts 1 GiB blobs back to
 * back (createBlob, fill in place, seal, delete), as a producer of big data would.
 */
import { performance } from 'node:perf_hooks';
import type { TrellisClient } from '../../src/index';
import { collectGarbage, serveCommands } from '../lib/serve-commands';
import { loadTrellis } from '../lib/dist';

const { connect } = loadTrellis();

let client: TrellisClient | undefined;
let getting: Promise<number[]> | undefined;
let stopGetting = false;

const commands = {
  async connect({ socket }: { socket: string }): Promise<void> {
    client = await connect(socket);
  },

  /** Starts timing gets of `id` (and untimed releases) until stopGets; returns at once. */
  startGets({ id }: { id: string }): void {
    collectGarbage();
    stopGetting = false;
    getting = (async () => {
      const samplesNs: number[] = [];
      while (!stopGetting) {
        const started = performance.now();
        // getObject: a request, as get was before a small Buffer came from the read index
        // (which never asks the daemon, so would measure no fairness of the daemon's).
        await client!.getObject(id);
        samplesNs.push((performance.now() - started) * 1e6);
        await client!.release(id);
      }
      return samplesNs;
    })();
  },

  async stopGets(_args: Record<string, never>): Promise<number[]> {
    stopGetting = true;
    return getting!;
  },

  /** `count` puts of `bytes` each; resolves to each put's time in nanoseconds. */
  async puts({ bytes, count }: { bytes: number; count: number }): Promise<number[]> {
    const samplesNs: number[] = [];
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const writer = await client!.createBlob(bytes);
      writer.buffer.fill(i & 0xff);
      const id = await writer.seal();
      samplesNs.push((performance.now() - started) * 1e6);
      await client!.delete(id);
    }
    return samplesNs;
  },
};

export type FairnessClientCommands = typeof commands;

serveCommands(commands);
