import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DurableStore, INLINE_MAX_BYTES } from '../../../src/daemon/durable/durable-store';
import { native } from '../../../src/native';
import { blobFilesIn, blobToPersist, metadataToPersist, nameFor, newId, patternBytes } from '../../fixtures/durable';
import { onCleanup, tempPath } from '../../fixtures/setup';
import { expectRejects } from '../../fixtures/trellis-errors';

async function openStore(dir: string, now?: number): Promise<DurableStore> {
  const store = await DurableStore.open(dir, now);
  onCleanup(() => store.close());
  return store;
}

async function readBack(store: DurableStore, id: string, size: number): Promise<Buffer> {
  const into = Buffer.alloc(size);
  await store.readBlob(id, into);
  return into;
}

describe('durable store', () => {
  it('persists a tree with small and big blobs and its name; a reopened store serves them', async () => {
    const dir = tempPath('data');
    const small = blobToPersist(newId(), INLINE_MAX_BYTES);
    const big = blobToPersist(newId(), INLINE_MAX_BYTES + 1);
    const tensor = metadataToPersist(newId(), { small: small.id, big: big.id });
    const first = await openStore(dir);
    await first.persist([tensor, small, big, small], { put: [nameFor('tensor', tensor.id)] });
    assert.deepEqual(blobFilesIn(dir), [big.id], 'only the big blob has a file');
    await first.close();

    const second = await openStore(dir);
    const { objects, names, expired, missingBlobs, damaged, removedFiles } = second.loaded;
    assert.deepEqual([expired, missingBlobs, damaged, removedFiles], [[], [], [], []]);
    assert.deepEqual(names, [nameFor('tensor', tensor.id)]);
    const byId = new Map(objects.map((o) => [o.id, o]));
    assert.deepEqual(byId.get(tensor.id), { ...tensor, fields: { ...tensor.fields } });
    assert.deepEqual(byId.get(small.id)?.blob?.stored, 'inline');
    assert.deepEqual(byId.get(big.id)?.blob?.stored, 'file');
    assert.ok((await readBack(second, small.id, small.nbytes)).equals(small.bytes!));
    assert.ok((await readBack(second, big.id, big.nbytes)).equals(big.bytes!));
    assert.ok(second.isPersisted(tensor.id));
  });

  it('writes from a view of shared memory and reads into one', async () => {
    const size = 3 * 1024 * 1024 + 77;
    const source = new native.Segment(8 * 1024 * 1024, 'durable-test-source');
    const target = new native.Segment(8 * 1024 * 1024, 'durable-test-target');
    onCleanup(() => {
      source.close();
      target.close();
    });
    const blob = blobToPersist(newId(), size);
    const view = Buffer.from(new native.Mapping(source.fd, source.size, true).slice(4096, size));
    view.set(blob.bytes!);
    const dir = tempPath('data');
    const store = await openStore(dir);
    await store.persist([{ ...blob, bytes: view }]);
    await store.close();

    const reopened = await openStore(dir);
    const into = Buffer.from(new native.Mapping(target.fd, target.size, true).slice(64, size));
    await reopened.readBlob(blob.id, into);
    assert.ok(into.equals(blob.bytes!));
  });

  it('lists objects whose ttl passed at open; persisting again sets a new ttl and keeps the bytes', async () => {
    const dir = tempPath('data');
    const now = 1_800_000_000_000;
    const soon = blobToPersist(newId(), INLINE_MAX_BYTES * 2, now + 1000);
    const later = blobToPersist(newId(), 10, now + 5000);
    const never = blobToPersist(newId(), 10, null);
    const store = await openStore(dir, now);
    await store.persist([soon, later, never]);
    const fileBefore = fs.statSync(path.join(dir, 'blobs', soon.id));
    await store.persist([{ ...soon, bytes: undefined, expiresAt: now + 9000 }]);
    assert.equal(fs.statSync(path.join(dir, 'blobs', soon.id)).ino, fileBefore.ino, 'the file is not written again');
    await store.close();

    const reopened = await openStore(dir, now + 5000);
    assert.deepEqual(
      reopened.loaded.expired.map((o) => o.id),
      [later.id],
    );
    assert.deepEqual(
      reopened.loaded.objects.map((o) => [o.id, o.expiresAt]).sort(),
      [
        [soon.id, now + 9000],
        [never.id, null],
      ].sort(),
    );
    assert.ok((await readBack(reopened, soon.id, soon.nbytes)).equals(soon.bytes!));
  });

  it('remove deletes records, inline bytes, files and names', async () => {
    const dir = tempPath('data');
    const big = blobToPersist(newId(), INLINE_MAX_BYTES + 100);
    const small = blobToPersist(newId(), 100);
    const store = await openStore(dir);
    await store.persist([big, small], { put: [nameFor('big', big.id), nameFor('small', small.id)] });
    await store.remove([big.id], { drop: ['big'] });
    assert.deepEqual(blobFilesIn(dir), []);
    await expectRejects(
      store.readBlob(big.id, Buffer.alloc(big.nbytes)),
      'ObjectNotFound',
      `no persisted blob ${big.id} in ${dir}`,
    );
    await store.close();
    const reopened = await openStore(dir);
    assert.deepEqual(
      reopened.loaded.objects.map((o) => o.id),
      [small.id],
    );
    assert.deepEqual(
      reopened.loaded.names.map((n) => n.name),
      ['small'],
    );
  });

  it('a changed byte in a blob file is an IOError naming the object and the file', async () => {
    const dir = tempPath('data');
    const blob = blobToPersist(newId(), 200_000);
    const store = await openStore(dir);
    await store.persist([blob]);
    const file = path.join(dir, 'blobs', blob.id);
    const bytes = fs.readFileSync(file);
    bytes[123_456] ^= 1;
    fs.writeFileSync(file, bytes);
    await expectRejects(
      store.readBlob(blob.id, Buffer.alloc(blob.nbytes)),
      'IOError',
      new RegExp(`^blob of object ${blob.id} is damaged: ${file} has checksum`),
    );
  });

  it('operations on the same object apply in call order', async () => {
    const dir = tempPath('data');
    const blob = blobToPersist(newId(), 2 * 1024 * 1024);
    const store = await openStore(dir);
    // The remove is called while the persist still writes its file: it must wait for the commit.
    await Promise.all([
      store.persist([blob], { put: [nameFor('n', blob.id)] }),
      store.remove([blob.id], { drop: ['n'] }),
    ]);
    assert.ok(!store.isPersisted(blob.id));
    assert.deepEqual(blobFilesIn(dir), []);
    await store.close();
    const reopened = await openStore(dir);
    assert.deepEqual([reopened.loaded.objects, reopened.loaded.names], [[], []]);
  });

  it('persists many small objects concurrently, and a closed store refuses work', async () => {
    const dir = tempPath('data');
    const store = await openStore(dir);
    const blobs = Array.from({ length: 2000 }, () => blobToPersist(newId(), 512));
    await Promise.all(blobs.map((blob) => store.persist([blob])));
    await store.close();
    await expectRejects(store.persist([blobToPersist(newId(), 1)]), 'Unavailable', `the data dir ${dir} is closed`);
    const reopened = await openStore(dir);
    assert.equal(reopened.loaded.objects.length, 2000);
    assert.ok((await readBack(reopened, blobs[1234].id, 512)).equals(patternBytes(blobs[1234].id, 512)));
  });
});
