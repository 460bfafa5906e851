import * as assert from 'node:assert/strict';
import type { Table } from 'apache-arrow';
import { connect, connectRpc, type TrellisClient } from '../../src/index';
import { allBuffers, assertValuesEqual } from '../fixtures/arrow-compare';
import { generatedTable } from '../fixtures/arrow-tables';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { describeValue } from '../fixtures/describe-value';
import { settledStatus } from '../fixtures/status';

describe('connectRpc: the same client over TCP, bytes copied instead of mapped', function () {
  let daemon: TestDaemon;
  let local: TrellisClient;
  let remote: TrellisClient;
  before(async () => {
    daemon = await startTestDaemon(['--size', '256MiB', '--rpc-port', '0']);
    local = await connect(daemon.socket);
    remote = await connectRpc(daemon.rpcEndpoint!);
  });
  after(async () => {
    await remote?.close();
    await local?.close();
    await daemon?.stop();
  });

  const cases: Record<string, () => unknown> = {
    'value/object': () => ({ text: 'héllo ☃', n: 42, list: [1, 'two', [3]], nested: { deep: null } }),
    'value/bigint': () => ({ big: 2n ** 63n - 1n }),
    'value/date': () => new Date(Date.UTC(2026, 10, 21, 12, 0, 0, 123)),
    'value/large': () => ({ rows: Array.from({ length: 20000 }, (_, i) => ({ i, s: `row ${i}` })) }),
    'blob/buffer': () => Buffer.from('raw bytes \x00\xff'),
    'blob/empty': () => Buffer.alloc(0),
    'blob/uint8array': () => new Uint8Array([1, 2, 3]),
    'tensor/float64': () => new Float64Array([1.5, -2, Math.PI]),
    'tensor/int32': () => new Int32Array([-(2 ** 31), 2 ** 31 - 1]),
    'tensor/uint64': () => new BigUint64Array([2n ** 64n - 1n]),
    'tensor/empty': () => new Float64Array(0),
    'sequence/mixed': () => [new Int32Array([7, 8]), Buffer.from('seq'), { plain: true }, 'text'],
  };

  it('every built-in type round-trips through the RPC port with the same content, in no shared memory', async () => {
    for (const [name, make] of Object.entries(cases)) {
      const id = await remote.put(make());
      // Described through the RPC client, every buffer must say shared: false.
      assert.deepEqual(
        describeValue(await remote.get(id), remote),
        describeValue(make(), remote),
        `${name} read back over RPC`,
      );
      assert.deepEqual(describeValue(await local.get(id)), describeValue(make()), `${name} read locally`);
      const localId = await local.put(make());
      assert.deepEqual(
        describeValue(await remote.get(localId), remote),
        describeValue(make(), remote),
        `${name} put locally, read over RPC`,
      );
    }
  });

  it('an arrow Table (one blob per buffer) round-trips both ways; its buffers are local copies', async () => {
    const table = generatedTable(20_000, 7);
    const id = await remote.put(table);
    const overRpc = (await remote.get(id)) as Table;
    assertValuesEqual(overRpc, table);
    assert.ok(
      allBuffers(overRpc).every((view) => !remote.isSharedMemory(view)),
      'no buffer of the RPC copy is shared memory',
    );
    const mapped = (await local.get(id)) as Table;
    assertValuesEqual(mapped, table);
    assert.ok(
      allBuffers(mapped).some((view) => local.isSharedMemory(view)),
      'the local client maps the same object',
    );
    assertValuesEqual((await remote.get(await local.put(table))) as Table, table);
  });

  it('a blob larger than a chunk crosses byte for byte, both ways', async () => {
    const bytes = Buffer.alloc(40 * 1024 * 1024 + 3);
    for (let i = 0; i < bytes.length; i += 4093) bytes[i] = (i / 4093) & 0xff;
    const id = await remote.put(bytes);
    assert.ok((await local.getBlob(id)).buffer.equals(bytes), 'read locally');
    const back = (await remote.get(id)) as Buffer;
    assert.ok(back.equals(bytes), 'read over RPC');
    assert.equal(remote.isSharedMemory(back), false);
    await remote.delete(id);
  });

  it('raw blobs, names, objects and status work as over the socket', async () => {
    const writer = await remote.createBlob(5);
    writer.buffer.write('hello');
    assert.equal(await writer.seal(), writer.id);
    assert.equal(writer.buffer.toString(), 'hello', 'once sealed, the writer reads the local copy');
    assert.equal(remote.isSharedMemory(writer.buffer), false);
    assert.equal((await remote.getBlob(writer.id)).buffer.toString(), 'hello');
    assert.equal((await local.getBlob(writer.id)).buffer.toString(), 'hello');
    await remote.putName(writer.id, 'rpc/hello');
    assert.equal(await local.getName('rpc/hello'), writer.id);
    assert.deepEqual(await remote.listNames({ pattern: 'rpc/*' }), ['rpc/hello']);
    const meta = await remote.getMeta('rpc/hello');
    assert.equal(meta.typename, 'trellis::Blob');
    assert.equal(meta.nbytes, 5);
    assert.equal(remote.instanceId, daemon.instanceId);
    assert.equal(remote.socketPath, daemon.rpcEndpoint);
    await remote.dropName('rpc/hello');
    await remote.release(writer.id);
    await remote.delete(writer.id);
    assert.equal(await local.exists(writer.id), false);
    const aborted = await remote.createBlob(64);
    await aborted.abort();
    assert.equal(await remote.exists(aborted.id), false);
  });

  it('streams: a writer over RPC, a reader on the socket', async () => {
    const { id } = await remote.createStream('trellis::ByteStream');
    const reader = await local.openReader(id);
    const writer = await remote.openWriter(id);
    const chunks = ['one', 'two', 'three'].map((text) => Buffer.from(text));
    const reading = (async () => {
      const seen: string[] = [];
      for await (const chunk of reader) seen.push((chunk as Buffer).toString());
      return seen;
    })();
    for (const chunk of chunks) await writer.write(chunk);
    await writer.finish();
    assert.deepEqual(await reading, ['one', 'two', 'three']);
  });

  it('an RPC client that goes away leaves nothing behind: unsealed blobs and references are reclaimed', async () => {
    const before = await settledStatus(local, (status) => status.clients === 2);
    const client = await connectRpc(daemon.rpcEndpoint!);
    const held = await local.put(Buffer.alloc(1024, 1));
    await client.get(held);
    await client.createBlobs([1024 * 1024, 4096]);
    assert.ok((await local.status()).memoryUsage > before.memoryUsage);
    await local.delete(held);
    assert.equal(
      (await local.status()).deferredFrees,
      before.deferredFrees + 1,
      'the RPC client still holds the deleted blob',
    );
    await client.close();
    const after = await settledStatus(
      local,
      (status) => status.clients === before.clients && status.deferredFrees === before.deferredFrees,
    );
    assert.equal(after.memoryUsage, before.memoryUsage);
    assert.equal(after.clients, before.clients);
  });
});
