/**
 * A trellis client in its own process: `node blob-client.ts SOCKET`. It puts, stores and gets
 * blobs on the runner's command and times them itself, so each number includes exactly what a
 * user's process pays: the socket round trips, fd passing, mapping and V8's bookkeeping.
 */
import { performance } from 'node:perf_hooks';
import type { Client } from '../../src/index';
import { cpuTimeMs } from '../lib/proc';
import { sample, sampleOnce, type SampleSet } from '../lib/sampler';
import { connectEcho } from '../lib/echo-client';
import { pooled } from '../lib/sample-row';
import { collectGarbage, serveCommands } from '../lib/serve-commands';
import { summarize } from '../lib/stats';
import { loadTrellis } from '../lib/dist';

const { connect } = loadTrellis();

export interface TrialArgs {
  bytes: number;
  iterations: number;
  warmup: number;
}

export interface CycleArgs extends TrialArgs {
  /** A raw echo server to time round trips to, interleaved with the cycles. */
  echo?: { socket: string; messageBytes: number };
  /** Cycles and echoes alternate this many times (iterations are split among them). */
  rounds?: number;
}

export interface CycleResult {
  cycle: SampleSet;
  /** The round trips to `echo`, from the same rounds. */
  echo?: SampleSet;
}

/** The first operation of its kind in this process, then the steady state after warmup. */
export interface ColdAndSteady {
  first: SampleSet;
  steady: SampleSet;
}

export interface PutArgs extends TrialArgs {
  /** The daemon's pid, to charge the first put's daemon-side work (segment reservation). */
  daemonPid: number;
}

/** Where a put's time goes, in nanoseconds. */
export interface PutPhases {
  /** createBlob: the round trip, any segment the daemon reserves, and mapping the blob's pages here. */
  create: number;
  /** Copying the source into shared memory. */
  fill: number;
  /** seal: the round trip and detaching the writable view. */
  seal: number;
}

export interface PutResult extends ColdAndSteady {
  firstPhases: PutPhases;
  /** The median of each phase over the steady puts. */
  steadyPhases: PutPhases;
  /** Daemon CPU time during the first put, in ms (10 ms resolution). */
  firstDaemonCpuMs: number;
}

export interface FirstPutResult {
  first: SampleSet;
  phases: PutPhases;
}

export interface GetArgs {
  /** Sealed blobs of one size, written by another process; gets rotate over them. */
  ids: string[];
  iterations: number;
  warmup: number;
}

export interface GetResult extends ColdAndSteady {
  /** The very first request of this process (an exists): cold JIT and socket, no fd. */
  firstRequest: SampleSet;
  /** Reading one byte of every page of ids[0] the first time this process touches them. */
  firstRead: SampleSet;
  /** The same reads again, pages now mapped. */
  secondRead: SampleSet;
}

const PAGE_BYTES = 4096;
/** Requests sent before the first get, so it measures the new segment rather than cold JIT. */
const REQUEST_PATH_WARMUP = 100;

function blobCommands(client: Client) {
  /** A fresh JS buffer, fully touched: the put copies from it like from a user's data. */
  function sourceBuffer(bytes: number): Uint8Array {
    collectGarbage();
    return new Uint8Array(bytes).fill(0x5a);
  }

  /** create + fill from a JS buffer + seal, timed by phase; deleteLast deletes the last blob put. */
  function putter(bytes: number) {
    const source = sourceBuffer(bytes);
    const made: string[] = [];
    const phases: PutPhases[] = [];
    const putOnce = async () => {
      // Four clock reads cost well under a microsecond; the smallest put takes tens.
      const start = performance.now();
      const writer = await client.createBlob(bytes);
      const created = performance.now();
      writer.buffer.set(source);
      const filled = performance.now();
      made.push(await writer.seal());
      const sealed = performance.now();
      phases.push({ create: (created - start) * 1e6, fill: (filled - created) * 1e6, seal: (sealed - filled) * 1e6 });
    };
    const deleteLast = () => client.delete(made.pop()!);
    return { putOnce, deleteLast, phases };
  }

  /** create + fill + seal + getBlob + release of one blob, back to back; the blobs are deleted after. */
  async function timeCycles({ bytes, iterations, warmup }: TrialArgs): Promise<SampleSet> {
    const source = sourceBuffer(bytes);
    const made: string[] = [];
    const cycleOnce = async () => {
      const writer = await client.createBlob(bytes);
      writer.buffer.set(source);
      const id = await writer.seal();
      const blob = await client.getBlob(id);
      if (blob.size !== bytes) throw new Error(`blob ${id} has ${blob.size} bytes, expected ${bytes}`);
      await client.release(id);
      made.push(id);
    };
    const result = await sample(cycleOnce, { iterations, warmup });
    await client.delete(made);
    return result;
  }

  return {
    /** create + fill from a JS buffer + seal; each blob is deleted after, untimed. */
    async put({ bytes, iterations, warmup, daemonPid }: PutArgs): Promise<PutResult> {
      const { putOnce, deleteLast, phases } = putter(bytes);
      const daemonCpuBefore = cpuTimeMs(daemonPid);
      const first = await sample(putOnce, { iterations: 1, after: deleteLast });
      const firstDaemonCpuMs = cpuTimeMs(daemonPid) - daemonCpuBefore;
      const steady = await sample(putOnce, { iterations, warmup, after: deleteLast });
      const timed = phases.slice(-iterations);
      const median = (phase: keyof PutPhases) => summarize(timed.map((p) => p[phase])).median;
      return {
        first,
        steady,
        firstPhases: phases[0],
        steadyPhases: { create: median('create'), fill: median('fill'), seal: median('seal') },
        firstDaemonCpuMs,
      };
    },

    /** One put (deleted after, untimed): the first of this process, into memory the daemon may already hold. */
    async firstPut({ bytes }: { bytes: number }): Promise<FirstPutResult> {
      const { putOnce, deleteLast, phases } = putter(bytes);
      const first = await sample(putOnce, { iterations: 1, after: deleteLast });
      return { first, phases: phases[0] };
    },

    /** Seals `count` blobs of each size for other processes to get; returns their ids by size. */
    async store({
      blobs,
    }: {
      blobs: Array<{ bytes: number; count: number }>;
    }): Promise<Array<{ bytes: number; ids: string[] }>> {
      const stored: Array<{ bytes: number; ids: string[] }> = [];
      for (const { bytes, count } of blobs) {
        const ids: string[] = [];
        for (let i = 0; i < count; i++) {
          const writer = await client.createBlob(bytes);
          writer.buffer.fill(patternByte(i));
          ids.push(await writer.seal());
        }
        // The writer lets go, so readers are the only holders.
        await client.release(ids);
        stored.push({ bytes, ids });
      }
      return stored;
    },

    /**
     * Gets of ids this process does not hold: each get is released after (untimed), since a
     * get of an id already held is answered from the client's cache without a round trip.
     */
    async get({ ids, iterations, warmup }: GetArgs): Promise<GetResult> {
      collectGarbage();
      const firstRequest = await sampleOnce(() => client.exists(ids[0]));
      for (let i = 0; i < REQUEST_PATH_WARMUP; i++) await client.exists(ids[0]);
      const first = await sampleOnce(() => client.getBlob(ids[0]));
      const probe = await client.getBlob(ids[0]);
      if (probe.size > 0 && probe.buffer[0] !== patternByte(0))
        throw new Error(`blob ${ids[0]} does not hold what its writer wrote`);
      await client.release(ids[0]);
      const pick = (i: number) => ids[i % ids.length];
      const steady = await sample((i) => client.getBlob(pick(i)), {
        iterations,
        warmup,
        after: (i) => client.release(pick(i)),
      });
      const blob = await client.getBlob(ids[0]);
      const firstRead = await sampleOnce(() => touchEveryPage(blob.buffer, patternByte(0)));
      const secondRead = await sampleOnce(() => touchEveryPage(blob.buffer, patternByte(0)));
      await client.release(ids[0]);
      return { firstRequest, first, steady, firstRead, secondRead };
    },

    /** create + fill + seal + getBlob + release of one blob, back to back; all deleted at the end. */
    /**
     * The small-blob cycle, in rounds; with `echo`, each round also times round trips to a raw
     * echo server from this process, so the cycle and the round trip it is counted in see the
     * same load.
     */
    async cycle({ bytes, iterations, warmup, echo, rounds = 1 }: CycleArgs): Promise<CycleResult> {
      const echoClient = echo && (await connectEcho(echo.socket, echo.messageBytes));
      const cycles: SampleSet[] = [];
      const echoes: SampleSet[] = [];
      const perRound = Math.ceil(iterations / rounds);
      for (let round = 0; round < rounds; round++) {
        const roundWarmup = round === 0 ? warmup : 0;
        cycles.push(await timeCycles({ bytes, iterations: perRound, warmup: roundWarmup }));
        if (echoClient) echoes.push(await sample(echoClient.roundTrip, { iterations: perRound, warmup: roundWarmup }));
      }
      echoClient?.close();
      return { cycle: pooled(cycles), echo: echoClient ? pooled(echoes) : undefined };
    },

    async deleteBlobs({ ids }: { ids: string[] }): Promise<void> {
      await client.delete(ids);
    },

    status() {
      return client.status();
    },

    /** Waits (bounded) until the daemon (--spare-segment) has a spare of `bytes` ready. */
    async untilSpare({ bytes, timeoutMs }: { bytes: number; timeoutMs: number }): Promise<number> {
      const start = performance.now();
      while ((await client.status()).memorySpare < bytes) {
        if (performance.now() - start > timeoutMs) throw new Error(`no spare segment ready within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return performance.now() - start;
    },

    /**
     * Waits (bounded) until the daemon has reserved its first segment: it does so in the
     * background at start, and baselines measured meanwhile would share its CPU.
     */
    async untilWarm({ timeoutMs }: { timeoutMs: number }): Promise<number> {
      const start = performance.now();
      while ((await client.status()).segments === 0) {
        if (performance.now() - start > timeoutMs) throw new Error(`no segment reserved within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return performance.now() - start;
    },
  };
}

function patternByte(index: number): number {
  return (index * 37 + 11) & 0xff;
}

/** Reads one byte of every page and checks them all, so that the reads cannot be optimized away. */
function touchEveryPage(buffer: Buffer, byte: number): void {
  let sum = 0;
  let pages = 0;
  for (let offset = 0; offset < buffer.length; offset += PAGE_BYTES, pages++) sum += buffer[offset];
  if (sum !== pages * byte) throw new Error(`a page of the blob does not hold the byte ${byte} its writer wrote`);
}

export type BlobClientCommands = ReturnType<typeof blobCommands>;

async function main(): Promise<void> {
  const socket = process.argv[2];
  if (!socket) throw new Error('usage: blob-client.ts SOCKET');
  serveCommands(blobCommands(await connect(socket)));
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`blob-client: ${error.stack ?? error.message}\n`);
    process.exit(1);
  });
}
