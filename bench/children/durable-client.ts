/**
 * The durable store's workloads, each against plain fs doing the same disk work in the same
 * process and run: persist of one big blob from shared memory against fs write + fsync of the
 * same bytes, a read of it back into shared memory against an fs read of the same file, and
 * opening a catalog of many small and a few big objects.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { DurableStore as DurableStoreClass } from '../../src/daemon/durable/durable-store';
import type { NativeSegment } from '../../src/native';
import { collectGarbage, serveCommands } from '../lib/serve-commands';
import { dropPageCache, readInto, writeAndSync } from '../lib/disk';
import { loadDist } from '../lib/dist';

const { IdGenerator } = loadDist<typeof import('../../src/protocol/ids')>('protocol/ids');
const { native } = loadDist<typeof import('../../src/native')>('native');

const ids = new IdGenerator(1);
/** Reads are quicker than writes and noisier: a few per trial. */
const READS_PER_TRIAL = 2;

/** Loaded on first use, so that openCatalog in a fresh process can time the loading too. */
function loadStore(): typeof DurableStoreClass {
  return loadDist<typeof import('../../src/daemon/durable/durable-store')>('daemon/durable/durable-store').DurableStore;
}

export interface BigBlobArgs {
  dir: string;
  bytes: number;
  trials: number;
  /** Drop the page cache before each read (root only), so reads come from the disk. */
  cold: boolean;
}

export interface BigBlobTrials {
  persistNs: number[];
  fsWriteNs: number[];
  readBlobNs: number[];
  fsReadNs: number[];
  /** Whether the page cache could be dropped for the reads. */
  coldReads: boolean;
}

export interface CatalogArgs {
  dir: string;
  small: number;
  smallBytes: number;
  large: number;
  largeBytes: number;
}

let segments: NativeSegment[] = [];

/** A writable view of a fresh shared-memory segment, every page touched (outside the timing). */
function sharedMemory(bytes: number, fill: number): Buffer {
  const segment = new native.Segment(bytes, 'bench-durable');
  segments.push(segment);
  const view = Buffer.from(new native.Mapping(segment.fd, segment.size, true).slice(0, bytes, true));
  return view.fill(fill);
}

function releaseSharedMemory(): void {
  for (const segment of segments) segment.release();
  segments = [];
  collectGarbage();
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start);
}

const commands = {
  /** Alternates store and fs each trial, so drift in the disk's speed hits both alike. */
  async bigBlob({ dir, bytes, trials, cold }: BigBlobArgs): Promise<BigBlobTrials> {
    const source = sharedMemory(bytes, 0);
    for (let offset = 0; offset < bytes; offset += 4096) source.writeUInt32LE((offset * 2654435761) >>> 0, offset);
    const into = sharedMemory(bytes, 0xff);
    const result: BigBlobTrials = { persistNs: [], fsWriteNs: [], readBlobNs: [], fsReadNs: [], coldReads: false };
    const DurableStore = loadStore();
    const plainFile = path.join(dir, 'plain');
    const dataDir = path.join(dir, 'data');
    for (let trial = 0; trial < trials; trial++) {
      const id = ids.next();
      const blob = {
        id,
        typename: 'trellis::Blob',
        nbytes: bytes,
        createdAt: Date.now(),
        members: {},
        fields: {},
        labels: {},
        expiresAt: null,
      };
      let store = await DurableStore.open(dataDir);
      const persist = () => store.persist([{ ...blob, bytes: source }]);
      const write = () => writeAndSync(plainFile, source);
      for (const step of trial % 2 === 0 ? [persist, write] : [write, persist]) {
        const ns = await timed(step);
        (step === persist ? result.persistNs : result.fsWriteNs).push(ns);
      }
      // A restart: the next read is a first get.
      await store.close();
      store = await DurableStore.open(dataDir);
      const readBlob = () => store.readBlob(id, into);
      const read = () => readInto(plainFile, into);
      for (let round = 0; round < READS_PER_TRIAL; round++) {
        for (const step of (trial + round) % 2 === 0 ? [readBlob, read] : [read, readBlob]) {
          if (cold) result.coldReads = dropPageCache();
          const ns = await timed(step);
          (step === readBlob ? result.readBlobNs : result.fsReadNs).push(ns);
        }
      }
      if (!into.equals(source)) throw new Error('the bytes read back differ from those persisted');
      await store.remove([id]);
      await store.close();
      await fsp.rm(plainFile, { force: true });
    }
    releaseSharedMemory();
    return result;
  },

  /** Persists `small` inline blobs (each its own persist call, all at once) and `large` files. */
  async fillCatalog({
    dir,
    small,
    smallBytes,
    large,
    largeBytes,
  }: CatalogArgs): Promise<{ smallNs: number; largeNs: number }> {
    const store = await loadStore().open(dir);
    const base = {
      typename: 'trellis::Blob',
      createdAt: Date.now(),
      members: {},
      fields: { note: 'bench' },
      labels: {},
      expiresAt: null,
    };
    const smallSource = sharedMemory(smallBytes, 1);
    const smallNs = await timed(() =>
      Promise.all(
        Array.from({ length: small }, () =>
          store.persist([{ ...base, id: ids.next(), nbytes: smallBytes, bytes: smallSource }]),
        ),
      ),
    );
    const largeSource = sharedMemory(largeBytes, 2);
    const largeNs = await timed(async () => {
      for (let i = 0; i < large; i++)
        await store.persist([{ ...base, id: ids.next(), nbytes: largeBytes, bytes: largeSource }]);
    });
    await store.close();
    releaseSharedMemory();
    return { smallNs, largeNs };
  },

  /** In a fresh process: loading the store's code, then opening the data dir (until ready to serve). */
  async openCatalog({ dir }: { dir: string }): Promise<{ requireNs: number; openNs: number; objects: number }> {
    const start = process.hrtime.bigint();
    const DurableStore = loadStore();
    const loaded = process.hrtime.bigint();
    const store = await DurableStore.open(dir);
    const opened = process.hrtime.bigint();
    const objects = store.loaded.objects.length;
    await store.close();
    return { requireNs: Number(loaded - start), openNs: Number(opened - loaded), objects };
  },
};

export type DurableClientCommands = typeof commands;

if (require.main === module) serveCommands(commands);
