import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlobFiles } from '../../../src/daemon/durable/blob-files';
import { CHUNK_BYTES } from '../../../src/daemon/durable/checksum';
import { newId, patternBytes } from '../../fixtures/durable';
import { tempPath } from '../../fixtures/setup';
import { expectRejects } from '../../fixtures/trellis-errors';

function blobsDir(): BlobFiles {
  const dir = tempPath('blobs');
  fs.mkdirSync(dir);
  return new BlobFiles(dir);
}

describe('durable blob files', () => {
  it('writes blobs and reads them back checked, across chunk boundaries', async () => {
    const files = blobsDir();
    // One byte, one chunk and a bit, and a size that ends mid-chunk after several.
    const sizes = [1, CHUNK_BYTES + 1, 2 * CHUNK_BYTES + 12345];
    const blobs = sizes.map((size) => ({ id: newId(), bytes: patternBytes(newId(), size) }));
    const checksums = await files.write(blobs);
    assert.deepEqual(fs.readdirSync(files.dir).sort(), blobs.map((b) => b.id).sort(), 'no temp file is left');
    for (const { id, bytes } of blobs) {
      assert.equal(fs.statSync(files.pathOf(id)).mode & 0o777, 0o600);
      const into = Buffer.alloc(bytes.length);
      await files.read(id, into, { size: bytes.length, checksum: checksums.get(id)! });
      assert.ok(into.equals(bytes), `blob of ${bytes.length} bytes`);
    }
  });

  it('a changed byte, a shorter file or a missing file is an IOError naming the id and the path', async () => {
    const files = blobsDir();
    const id = newId();
    const bytes = patternBytes(id, CHUNK_BYTES + 100);
    const expected = { size: bytes.length, checksum: (await files.write([{ id, bytes }])).get(id)! };
    const file = files.pathOf(id);
    const into = Buffer.alloc(bytes.length);

    const handle = fs.openSync(file, 'r+');
    fs.writeSync(handle, Buffer.from([bytes[CHUNK_BYTES + 7] ^ 0x10]), 0, 1, CHUNK_BYTES + 7);
    fs.closeSync(handle);
    await expectRejects(
      files.read(id, into, expected),
      'IOError',
      new RegExp(`^blob of object ${id} is damaged: ${file} has checksum xxh64:[0-9a-f]{16}, its record says xxh64:`),
    );

    fs.truncateSync(file, 10);
    await expectRejects(
      files.read(id, into, expected),
      'IOError',
      new RegExp(`blob of object ${id} is damaged: ${file} has 10 bytes, its record says ${bytes.length}`),
    );

    fs.rmSync(file);
    const missing = await expectRejects(
      files.read(id, into, expected),
      'IOError',
      new RegExp(`cannot read the blob of object ${id} from ${file}: ENOENT`),
    );
    assert.equal((missing.cause as NodeJS.ErrnoException).code, 'ENOENT');
  });

  it('the sweep deletes temp and unreferenced files, lists missing ones and leaves others alone', async () => {
    const files = blobsDir();
    const [kept, orphan, missing] = [newId(), newId(), newId()];
    await files.write([kept, orphan].map((id) => ({ id, bytes: patternBytes(id, 100) })));
    fs.writeFileSync(path.join(files.dir, `${newId()}.123-0.tmp`), 'half');
    fs.writeFileSync(path.join(files.dir, 'README'), 'not ours');
    const result = await files.sweep(new Set([kept, missing]));
    assert.deepEqual(result.missing, [missing]);
    assert.equal(result.removed.length, 2);
    assert.deepEqual(fs.readdirSync(files.dir).sort(), ['README', kept].sort());
  });

  it('refuses a path from something that is not an object id', async () => {
    const files = blobsDir();
    await expectRejects(
      files.write([{ id: '../escape', bytes: Buffer.alloc(1) }]),
      'InvalidArgument',
      'not an object id: "../escape"',
    );
    assert.deepEqual(fs.readdirSync(files.dir), []);
  });
});
