import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Table } from 'apache-arrow';
import { connect, ShareableList, type TrellisClient } from '../../src/index';
import { encodeHeader, paddedSize } from '../../src/client/archive/tar-entries';
import { assertSchemasEqual, assertValuesEqual } from '../fixtures/arrow-compare';
import { generatedTable } from '../fixtures/arrow-tables';
import { blobFilesNamedByHash, contentOf, GOLDEN_ARCHIVE, GOLDEN_TOP_HASH, putGolden } from '../fixtures/archives';
import { startChild } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { describeValue } from '../fixtures/describe-value';
import { tempPath } from '../fixtures/setup';
import { expectRejects } from '../fixtures/trellis-errors';

describe('archives: export and import', function () {
  this.timeout(60_000);
  let daemonA: TestDaemon;
  let daemonB: TestDaemon;
  let a: TrellisClient;
  let b: TrellisClient;
  before(async () => {
    [daemonA, daemonB] = await Promise.all([
      startTestDaemon(['--size', '128MiB']),
      startTestDaemon(['--size', '128MiB']),
    ]);
    [a, b] = await Promise.all([connect(daemonA.socket), connect(daemonB.socket)]);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await Promise.all([daemonA.stop(), daemonB.stop()]);
  });

  /** get(imported) equals get(original): arrow by value and schema, others by description. */
  function assertSameValue(actual: unknown, expected: unknown): void {
    if (Array.isArray(expected) && Array.isArray(actual)) {
      assert.equal(actual.length, expected.length);
      expected.forEach((item, i) => assertSameValue(actual[i], item));
    } else if (expected && typeof expected === 'object' && 'schema' in expected && 'numRows' in expected) {
      assertSchemasEqual((actual as Table).schema, (expected as Table).schema);
      assertValuesEqual(actual as Table, expected as Table);
    } else {
      assert.deepEqual(describeValue(actual, b), describeValue(expected, a));
    }
  }

  const table = generatedTable(2000, 11, 3);
  const cases: Record<string, () => unknown | Promise<unknown>> = {
    DataFrame: () => table,
    RecordBatch: () => table.batches[1],
    'Tensor<float64>': () => new Float64Array([1.5, -2, Math.PI, 0]),
    'Tensor<int64>': () => new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]),
    Blob: () => Buffer.from('raw bytes \x00\xff'),
    'empty Blob': () => Buffer.alloc(0),
    'inline Value': () => ({
      text: 'héllo ☃',
      n: 42,
      big: 2n ** 63n - 1n,
      when: new Date(Date.UTC(2026, 1, 2)),
      list: [1, null, true],
    }),
    'Value in a blob': () => ({ rows: Array.from({ length: 20000 }, (_, i) => ({ i, s: `row ${i}` })) }),
    Sequence: () => [
      table.batches[0],
      new Int32Array([7, 8]),
      Buffer.from('seq'),
      { plain: true },
      'text',
      Buffer.from('seq'),
    ],
    'frozen ShareableList': async () => {
      const list = await ShareableList.create(a, [Buffer.from('a'), 'bb', 1234, 56.78, true, null, 2n ** 60n]);
      await list.freeze();
      return list;
    },
  };

  for (const [name, make] of Object.entries(cases)) {
    it(`${name}: exported on one daemon and imported on another equals the original`, async () => {
      const value = await make();
      const id = await a.put(value, { labels: { case: name } });
      const dir = tempPath('export');
      let reported = { bytesDone: -1, bytesTotal: -2 };
      const exported = await a.exportArchive(id, dir, { onProgress: (progress) => (reported = progress) });
      assert.equal(reported.bytesDone, reported.bytesTotal);
      assert.match(exported.topHash, /^[0-9a-f]{64}$/);
      assert.ok(blobFilesNamedByHash(dir));
      const imported = await b.importArchive(dir, { onProgress: (progress) => (reported = progress) });
      assert.equal(reported.bytesDone, reported.bytesTotal);
      assert.deepEqual(
        { topHash: imported.topHash, existed: imported.existed },
        { topHash: exported.topHash, existed: false },
      );
      const expected = contentOf(await a.getMeta(id));
      // Labels travel for every type, a root blob's too (format version 2, docs/archive-format.md).
      assert.deepEqual(expected.labels, { case: name });
      assert.deepEqual(contentOf(await b.getMeta(imported.id)), expected);
      const original = await a.get(id);
      const copy = await b.get(imported.id);
      assertSameValue(
        value instanceof ShareableList ? copy.toArray() : copy,
        value instanceof ShareableList ? original.toArray() : original,
      );
    });
  }

  it('imports in a separate process, by name, from a .tar', async () => {
    const id = await a.put(table);
    const tarPath = tempPath('table.tar');
    const { topHash, bytes } = await a.exportArchive(id, tarPath);
    assert.equal(bytes, fs.statSync(tarPath).size);
    const child = startChild('archive-import.ts', [daemonB.socket, tarPath, 'archives/child-import']);
    const result = await child.next<{ id: string; topHash: string; existed: boolean }>();
    assert.equal(await child.exited, 0);
    assert.equal(result.topHash, topHash);
    assert.equal(await b.getName('archives/child-import'), result.id);
    assertSameValue(await b.get('archives/child-import'), table);
  });

  it('writes a .tar whose blobs (of sizes not a multiple of 512) import where the content is new', async () => {
    // Content no other test puts, so the import reads and checks every blob (no existed shortcut).
    const value = [new Float64Array([0.25, 5, -7]), Buffer.from('tar bytes \x01\xfe'), { note: 'only here' }];
    const id = await a.put(value);
    const tarPath = tempPath('fresh.tar');
    const { topHash } = await a.exportArchive(id, tarPath);
    const imported = await b.importArchive(tarPath);
    assert.deepEqual({ topHash: imported.topHash, existed: imported.existed }, { topHash, existed: false });
    assert.deepEqual(await b.get(imported.id), value);
  });

  it('gives equal content one topHash, and a changed byte or field another', async () => {
    const one = await a.exportArchive(
      await a.put(new Float64Array([1, 2, 3]), { labels: { x: '1' } }),
      tempPath('one'),
    );
    const two = await b.exportArchive(
      await b.put(new Float64Array([1, 2, 3]), { labels: { x: '2' } }),
      tempPath('two.tar'),
    );
    const byte = await a.exportArchive(await a.put(new Float64Array([1, 2, 4])), tempPath('three'));
    const shape = await a.exportArchive(
      await a.put(new Float64Array([1, 2, 3, 4]), { shape: [2, 2] }),
      tempPath('four'),
    );
    const flat = await a.exportArchive(await a.put(new Float64Array([1, 2, 3, 4])), tempPath('five'));
    assert.equal(one.topHash, two.topHash);
    assert.notEqual(one.topHash, byte.topHash);
    assert.notEqual(shape.topHash, flat.topHash);
  });

  it('a root blob with labels is format version 2; without, version 1, byte for byte as before', async () => {
    const headerOf = (dir: string) =>
      JSON.parse(fs.readFileSync(path.join(dir, 'manifest.jsonl'), 'utf8').split('\n')[0]);
    const labelled = tempPath('labelled-blob');
    const plain = tempPath('plain-blob');
    const first = await a.exportArchive(await a.put(Buffer.from('root blob'), { labels: { k: 'v' } }), labelled);
    const second = await a.exportArchive(await a.put(Buffer.from('root blob')), plain);
    assert.equal(first.topHash, second.topHash, 'labels are never hashed');
    assert.deepEqual(
      [headerOf(labelled).version, headerOf(labelled).root],
      [2, { typename: 'trellis::Blob', blob: '', labels: { k: 'v' } }],
    );
    assert.deepEqual([headerOf(plain).version, headerOf(plain).root], [1, { typename: 'trellis::Blob', blob: '' }]);
    // Version 1 has no place for them: a v1 manifest with labels on a blob is refused.
    const manifest = path.join(labelled, 'manifest.jsonl');
    fs.writeFileSync(manifest, fs.readFileSync(manifest, 'utf8').replace('"version":2', '"version":1'));
    await expectRejects(b.importArchive(labelled), 'ParseError', /node "": a blob is \{ typename, blob \}/);
  });

  it('pins the golden archive: its topHash, and that of the same content exported now', async () => {
    const imported = await b.importArchive(GOLDEN_ARCHIVE);
    assert.equal(imported.topHash, GOLDEN_TOP_HASH);
    const exported = await a.exportArchive(await putGolden(a), tempPath('golden'));
    assert.equal(exported.topHash, GOLDEN_TOP_HASH);
    assert.deepEqual(await b.get(imported.id), [
      new Float64Array([1.5, -2, 3]),
      Buffer.from('golden bytes'),
      'a value',
    ]);
  });

  it('stores an archive imported twice once, and an export imported back returns the original', async () => {
    const id = await a.put(generatedTable(500, 3, 2));
    const dir = tempPath('twice');
    await a.exportArchive(id, dir);
    const first = await b.importArchive(dir);
    const before = await b.status();
    const second = await b.importArchive(dir, { name: 'archives/twice' });
    const after = await b.status();
    assert.deepEqual(second, { ...first, existed: true });
    assert.equal(after.objects, before.objects);
    assert.equal(after.memoryUsage, before.memoryUsage);
    assert.equal(await b.getName('archives/twice'), first.id);
    assert.deepEqual(await a.importArchive(dir), { id, topHash: first.topHash, existed: true });
  });

  describe('a damaged archive is refused and leaves the store unchanged', () => {
    let dir: string;
    beforeEach(async () => {
      dir = tempPath('damaged');
      await a.exportArchive(await a.put([new Float64Array([1, 2, 3]), Buffer.from('second blob')]), dir);
    });
    const blobFile = (dir: string, index: number) =>
      path.join(dir, 'blobs', fs.readdirSync(path.join(dir, 'blobs')).sort()[index]);
    const manifestLines = (dir: string) => fs.readFileSync(path.join(dir, 'manifest.jsonl'), 'utf8').split('\n');

    async function refused(
      archivePath: string,
      code: 'HashMismatch' | 'ParseError' | 'IOError',
      message: RegExp,
    ): Promise<void> {
      const before = await b.status();
      await expectRejects(b.importArchive(archivePath), code, message);
      const after = await b.status();
      assert.deepEqual([after.objects, after.memoryUsage], [before.objects, before.memoryUsage]);
    }

    it('a flipped byte: HashMismatch naming the blob', async () => {
      const file = blobFile(dir, 0);
      const bytes = fs.readFileSync(file);
      bytes[bytes.length - 1] ^= 1;
      fs.writeFileSync(file, bytes);
      await refused(dir, 'HashMismatch', /blob "\/\d\/?\w*".*has sha256/);
    });

    it('a missing blob: HashMismatch naming it', async () => {
      fs.rmSync(blobFile(dir, 1));
      await refused(dir, 'HashMismatch', /blob "\/\d(\/data)?" is missing/);
    });

    it('an extra blob: HashMismatch naming it', async () => {
      fs.writeFileSync(path.join(dir, 'blobs', 'f'.repeat(64)), 'extra');
      await refused(dir, 'HashMismatch', /extra blob blobs\/f{64}/);
    });

    it('a changed field: HashMismatch on the topHash', async () => {
      const lines = manifestLines(dir);
      lines[0] = lines[0].replace('"length":2', '"length":3');
      fs.writeFileSync(path.join(dir, 'manifest.jsonl'), lines.join('\n'));
      await refused(dir, 'HashMismatch', /topHash [0-9a-f]{64} does not match/);
    });

    it('a bad manifest line: ParseError with the line', async () => {
      const lines = manifestLines(dir);
      lines[2] = '{"key": "/1", "size": "many"';
      fs.writeFileSync(path.join(dir, 'manifest.jsonl'), lines.join('\n'));
      await refused(dir, 'ParseError', /manifest\.jsonl line 3: not JSON/);
    });

    it('a missing path: IOError naming it', async () => {
      await refused(path.join(dir, 'nowhere'), 'IOError', /nowhere: ENOENT/);
    });

    it('a tar entry with "..": ParseError, refused', async () => {
      const tarPath = tempPath('evil.tar');
      const data = Buffer.from('evil');
      fs.writeFileSync(
        tarPath,
        Buffer.concat([
          encodeHeader('blobs/../../evil', data.length, 'File'),
          data,
          Buffer.alloc(paddedSize(data.length) - data.length),
          Buffer.alloc(1024),
        ]),
      );
      await refused(tarPath, 'ParseError', /entry "blobs\/..\/..\/evil" has a "..": refused/);
    });
  });

  it('refuses streams (InvalidArgument) and a non-empty target directory', async () => {
    const stream = await a.createStream('trellis::ByteStream');
    await expectRejects(
      a.exportArchive(stream.id, tempPath('stream')),
      'InvalidArgument',
      /is a stream \(trellis::ByteStream\): streams are not exportable/,
    );
    const dir = tempPath('full');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'x'), 'x');
    await expectRejects(
      a.exportArchive(await a.put(Buffer.from('b')), dir),
      'InvalidArgument',
      /exists and is not empty/,
    );
  });
});
