/**
 * One soak client, in its own process: `node -r tsx/cjs worker.ts SOCKET INDEX GENERATION SEED
 * MAX_BYTES persist|memory` (persist: what it names is persisted, to outlive a daemon restart).
 * It runs a seeded mix of requests against the daemon until the runner says stop (or SIGKILLs
 * it), checks the bytes of everything it reads, and reports as it goes (messages.ts).
 * A restarted worker (generation > 0) first deletes what its killed predecessor left behind.
 */
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { connect, isTrellisError, ShareableList, type ShareableItem, type TrellisClient } from '../../src/index';
import { checkContent, checksum, fillContent, makeContent } from './content';
import type { NameValue, RunnerMessage, StatsBatch, WorkerMessage } from './messages';
import { Random } from './random';

const REPORT_EVERY_MS = 1000;
/** Unnamed objects a worker keeps alive at once; past this it deletes its oldest. */
const MAX_PLAIN_OBJECTS = 6;
const OWN_NAMES = 4;
const SHARED_NAMES = 8;
/** Above this, a put is createBlob + fill in place + seal, as a producer of big data would do it. */
const PUT_COPY_LIMIT = 1024 * 1024;
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

const WEIGHTS = {
  put: 20,
  get: 20,
  getOther: 6,
  delete: 8,
  putName: 8,
  getName: 10,
  dropName: 3,
  sharedName: 6,
  listObjects: 5,
  stream: 5,
  shareableList: 5,
};

const FAILED = Symbol('failed');
type Result<T> = T | typeof FAILED;

const [socket, indexArg, generationArg, seedArg, maxBytesArg, keepArg] = process.argv.slice(2);
const persistNamed = keepArg === 'persist';
const index = Number(indexArg);
const generation = Number(generationArg);
const maxBytes = Number(maxBytesArg);
const worker = `w${index}`;
const random = new Random(Number(seedArg) * 1_000_003 + index * 7919 + generation * 104_729);

let batch = emptyBatch();
const plain: string[] = [];
const sharedMine: string[] = [];
let stopping = false;

function emptyBatch(): StatsBatch {
  return { type: 'stats', latencies: {}, expected: {}, unexpected: [], bytesWritten: 0 };
}

function send(message: WorkerMessage): Promise<void> {
  // Waiting for the write keeps an intent ahead of the request it announces, even if we are killed.
  return new Promise((resolve) => process.send!(message, undefined, undefined, () => resolve()));
}

function flush(): Promise<void> {
  const full = batch;
  batch = emptyBatch();
  return send(full);
}

function unexpected(kind: string, code: string, message: string): void {
  batch.unexpected.push({ kind, code, message: message.slice(0, 500) });
}

/** Runs one request, timing it; a failure with an `expected` code is counted, any other reported. */
async function call<T>(kind: string, run: () => Promise<T>, expected: readonly string[] = []): Promise<Result<T>> {
  const started = performance.now();
  try {
    const result = await run();
    (batch.latencies[kind] ??= []).push(performance.now() - started);
    return result;
  } catch (error) {
    const code = isTrellisError(error) ? error.code : 'Error';
    if (expected.includes(code)) {
      (batch.latencies[kind] ??= []).push(performance.now() - started);
      batch.expected[`${kind}:${code}`] = (batch.expected[`${kind}:${code}`] ?? 0) + 1;
    } else {
      unexpected(kind, code, (error as Error).stack ?? String(error));
    }
    return FAILED;
  }
}

function verify(kind: string, what: string, bytes: Uint8Array): boolean {
  const problem = checkContent(bytes);
  if (problem) unexpected(kind, 'BadContent', `${what}: ${problem}`);
  return problem === undefined;
}

/** 70% small (100 B to 64 KiB), 25% medium (to 4 MiB), 5% large (to maxBytes). */
function objectSize(): number {
  const band = random.weighted({ small: 70, medium: 25, large: 5 });
  if (band === 'small') return random.logUniform(100, Math.min(64 * 1024, maxBytes));
  if (band === 'medium') return random.logUniform(64 * 1024, Math.min(4 * 1024 * 1024, maxBytes));
  return random.logUniform(Math.min(4 * 1024 * 1024, maxBytes), maxBytes);
}

/** Puts a new self-checking object; resolves to its id and the sha1 of its bytes. */
async function putObject(
  client: TrellisClient,
  size: number,
  labels: Record<string, string>,
  persist = false,
): Promise<Result<{ id: string; sum: string }>> {
  const seed = random.uint32();
  batch.bytesWritten += size;
  if (size <= PUT_COPY_LIMIT) {
    const bytes = makeContent(size, seed);
    const id = await call('put', () => client.put(bytes, { labels, persist }));
    return id === FAILED ? FAILED : { id, sum: checksum(bytes) };
  }
  const writer = await call('createBlob', () => client.createBlob(size));
  if (writer === FAILED) return FAILED;
  fillContent(writer.buffer, seed);
  const sum = checksum(writer.buffer);
  const id = await call('sealBlob', () => client.sealBlob(writer, { labels, persist }));
  return id === FAILED ? FAILED : { id, sum };
}

/** get, check the bytes, release: a reader that does not pin what it read. */
async function readAndCheck(client: TrellisClient, id: string, kind: string, expected: string[]): Promise<void> {
  const value = await call(kind, () => client.get(id), expected);
  if (value === FAILED) return;
  if (!(value instanceof Uint8Array)) unexpected(kind, 'BadContent', `${id} resolved to ${typeof value}`);
  else verify(kind, id, value);
  await call('release', () => client.release(id), ['ObjectNotFound']);
}

async function deleteObject(client: TrellisClient, id: string): Promise<void> {
  await call('delete', () => client.delete(id), ['Conflict', 'ObjectNotFound']);
}

async function announce(name: string, value: NameValue, change: () => Promise<unknown>): Promise<unknown> {
  await send({ type: 'name-intent', name, value });
  const result = await change();
  if (result !== FAILED) await send({ type: 'name-done', name, value });
  return result;
}

const operations: Record<keyof typeof WEIGHTS, (client: TrellisClient) => Promise<void>> = {
  async put(client) {
    const put = await putObject(client, objectSize(), { soak: 'plain', worker });
    if (put === FAILED) return;
    plain.push(put.id);
    if (plain.length > MAX_PLAIN_OBJECTS) await deleteObject(client, plain.shift()!);
  },

  async get(client) {
    if (plain.length > 0) await readAndCheck(client, random.pick(plain), 'get', []);
  },

  async getOther(client) {
    const found = await call('listObjects', () => client.listObjects({ labels: { soak: 'plain' }, limit: 64 }));
    if (found === FAILED || found.length === 0) return;
    // Its owner may delete it at any moment: ObjectNotFound is part of the workload.
    await readAndCheck(client, random.pick(found).id, 'get', ['ObjectNotFound']);
  },

  async delete(client) {
    if (plain.length === 0) return;
    const [id] = plain.splice(random.int(plain.length), 1);
    await deleteObject(client, id);
  },

  async putName(client) {
    const name = `soak/${worker}/${random.int(OWN_NAMES)}`;
    const size = objectSize();
    const put = await putObject(client, size, { soak: 'named', worker }, persistNamed);
    if (put === FAILED) return;
    const previous = await call('getName', () => client.getName(name), ['NameNotFound']);
    const value: NameValue = { present: true, checksum: put.sum, size };
    const set = await announce(name, value, () =>
      call('putName', () => client.putName(put.id, name, { override: true })),
    );
    // The old object is unpinned now (the soak daemon keeps one version per name).
    if (previous !== FAILED && previous !== put.id) await deleteObject(client, previous);
    if (set === FAILED) await deleteObject(client, put.id);
  },

  async getName(client) {
    const name = `soak/${worker}/${random.int(OWN_NAMES)}`;
    const id = await call('getName', () => client.getName(name), ['NameNotFound']);
    if (id !== FAILED) await readAndCheck(client, id, 'get', []);
  },

  async dropName(client) {
    const name = `soak/${worker}/${random.int(OWN_NAMES)}`;
    const id = await call('getName', () => client.getName(name), ['NameNotFound']);
    await announce(name, { present: false }, () => call('dropName', () => client.dropName(name)));
    if (id !== FAILED) await deleteObject(client, id);
  },

  async sharedName(client) {
    const name = `soak/shared/${random.int(SHARED_NAMES)}`;
    const action = random.weighted({ publish: 2, read: 3, drop: 1 });
    if (action === 'publish') {
      const put = await putObject(client, random.logUniform(100, 4096), { soak: 'shared', worker });
      if (put === FAILED) return;
      await call('putName', () => client.putName(put.id, name, { override: true }));
      sharedMine.push(put.id);
      // Another worker may have replaced our earlier objects' names by now, or not yet.
      if (sharedMine.length > 3) {
        const oldest = sharedMine.shift()!;
        await call('delete', () => client.delete(oldest, { force: true }), ['ObjectNotFound']);
      }
    } else if (action === 'read') {
      const id = await call('getName', () => client.getName(name), ['NameNotFound']);
      // A forced delete may take it between getName and get.
      if (id !== FAILED) await readAndCheck(client, id, 'get', ['ObjectNotFound']);
    } else {
      await call('dropName', () => client.dropName(name));
    }
  },

  async listObjects(client) {
    const labels: Record<string, string> = random.next() < 0.5 ? { worker } : { soak: 'named' };
    await call('listObjects', () => client.listObjects({ labels, limit: 100 }));
  },

  async stream(client) {
    const stream = await call('createStream', () => client.createStream('trellis::ByteStream'));
    if (stream === FAILED) return;
    const sizes = Array.from({ length: 1 + random.int(6) }, () =>
      random.logUniform(100, Math.min(MAX_CHUNK_BYTES, maxBytes)),
    );
    const seeds = sizes.map(() => random.uint32());
    const writer = await call('openWriter', () => client.openWriter(stream.id));
    const reader = await call('openReader', () => client.openReader(stream.id));
    if (writer === FAILED || reader === FAILED) return;
    const write = async () => {
      for (let i = 0; i < sizes.length; i++) {
        batch.bytesWritten += sizes[i];
        if ((await call('writeChunk', () => writer.write(makeContent(sizes[i], seeds[i])))) === FAILED) return;
      }
      await call('finishStream', () => writer.finish());
    };
    const read = async () => {
      let chunks = 0;
      for await (const chunk of reader) {
        if (verify('readChunk', `chunk ${chunks} of ${stream.id}`, chunk as Buffer)) chunks++;
      }
      if (chunks !== sizes.length) {
        unexpected('readChunk', 'BadContent', `${stream.id}: read ${chunks} of ${sizes.length} chunks`);
      }
    };
    const started = performance.now();
    await Promise.all([write(), call('readStream', read)]);
    (batch.latencies.stream ??= []).push(performance.now() - started);
  },

  async shareableList(client) {
    const items: ShareableItem[] = Array.from({ length: 1 + random.int(64) }, () => {
      const kind = random.int(6);
      if (kind === 0) return `s${random.uint32()}`;
      if (kind === 1) return random.int(1_000_000);
      if (kind === 2) return random.next() * 1000;
      if (kind === 3) return random.next() < 0.5;
      if (kind === 4) return null;
      return makeContent(random.logUniform(8, 4096), random.uint32());
    });
    const list = await call('createList', () => ShareableList.create(client, items));
    if (list === FAILED) return;
    if ((await call('freezeList', () => list.freeze({ labels: { soak: 'list', worker } }))) === FAILED) return;
    const opened = await call('openList', () => ShareableList.open(client, list.name));
    if (opened !== FAILED && !isDeepStrictEqual(opened.toArray(), items)) {
      unexpected('openList', 'BadContent', `${list.name} reads back other items than were written`);
    }
    await deleteObject(client, list.name);
  },
};

/** A restarted worker deletes what its killed predecessor left (named objects stay: Conflict). */
async function cleanUpPredecessor(client: TrellisClient): Promise<void> {
  const left = await call('listObjects', () => client.listObjects({ labels: { worker }, limit: 100_000 }));
  if (left === FAILED) return;
  for (const { id } of left) await deleteObject(client, id);
}

async function main(): Promise<void> {
  const client = await connect(socket);
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  process.on('message', (message: RunnerMessage) => {
    if (message.type === 'stop') stopping = true;
  });
  process.on('disconnect', () => process.exit(0));
  const timer = setInterval(() => void flush(), REPORT_EVERY_MS);
  await send({ type: 'ready' });
  if (generation > 0) await cleanUpPredecessor(client);
  void (async () => {
    while (!stopping) {
      const operation = random.weighted(WEIGHTS);
      try {
        await operations[operation](client);
      } catch (error) {
        unexpected(operation, 'Error', (error as Error).stack ?? String(error));
      }
    }
    done();
  })();
  await finished;
  clearInterval(timer);
  await flush();
  await client.close();
  await send({ type: 'stopped' });
  process.disconnect();
}

main().catch((error: Error) => {
  process.stderr.write(`soak worker ${worker}: ${error.stack ?? error}\n`);
  process.exit(1);
});
