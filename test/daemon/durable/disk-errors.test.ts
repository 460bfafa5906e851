/**
 * A full disk and a read-only one, on a small tmpfs mounted for the test (needs root, and a
 * kernel that lets this process mount; skipped with the reason otherwise).
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { DurableStore } from '../../../src/daemon/durable/durable-store';
import { blobFilesIn, blobToPersist, metadataToPersist, nameFor, newId } from '../../fixtures/durable';
import { mountTmpfs, unmount } from '../../fixtures/tmpfs';
import { expectRejects } from '../../fixtures/trellis-errors';

const MiB = 1024 * 1024;

describe('durable store on a full disk or a read-only folder', function () {
  let mountPoint: string | undefined;
  let store: DurableStore | undefined;

  beforeEach(function () {
    const mounted = mountTmpfs('4m');
    if ('reason' in mounted) {
      this.skip();
      return;
    }
    mountPoint = mounted.dir;
  });

  afterEach(async () => {
    await store?.close();
    store = undefined;
    if (mountPoint !== undefined) unmount(mountPoint);
    mountPoint = undefined;
  });

  it('ENOSPC writing a blob: IOError naming its file; nothing of that persist is left', async () => {
    const dir = path.join(mountPoint!, 'data');
    store = await DurableStore.open(dir);
    const kept = blobToPersist(newId(), MiB);
    await store.persist([kept], { put: [nameFor('kept', kept.id)] });

    const big = blobToPersist(newId(), 6 * MiB);
    const tree = metadataToPersist(newId(), { data: big.id });
    const file = path.join(dir, 'blobs', big.id);
    const error = await expectRejects(
      store.persist([tree, big], { put: [nameFor('big', tree.id)] }),
      'IOError',
      new RegExp(`^cannot persist the blob of object ${big.id} to ${file}: ENOSPC`),
    );
    assert.equal((error.cause as NodeJS.ErrnoException).code, 'ENOSPC');
    assert.deepEqual(blobFilesIn(dir), [kept.id], 'no temp file, no half file');
    assert.ok(!store.isPersisted(tree.id) && !store.isPersisted(big.id));

    // The store goes on working once there is room, and the failed persist left no trace.
    await store.persist([blobToPersist(newId(), 100)]);
    await store.close();
    store = await DurableStore.open(dir);
    assert.deepEqual(
      store.loaded.names.map((n) => n.name),
      ['kept'],
    );
    assert.equal(store.loaded.objects.length, 2);
    assert.deepEqual(store.loaded.removedFiles, []);
  });

  it('ENOSPC in the catalog: IOError naming the catalog; the commit is all or nothing', async () => {
    const dir = path.join(mountPoint!, 'data');
    store = await DurableStore.open(dir);
    const before = blobToPersist(newId(), 1000);
    await store.persist([before]);
    // 120 inline blobs of 40 KB need about 5 MB of catalog pages: more than the disk holds.
    const many = Array.from({ length: 120 }, () => blobToPersist(newId(), 40_000));
    // (lmdb-js also logs the failed commit's system error on stderr.)
    await expectRejects(
      store.persist(many),
      'IOError',
      new RegExp(`^cannot commit to the catalog ${path.join(dir, 'catalog')}: `),
    );
    assert.ok(many.every((blob) => !store!.isPersisted(blob.id)));
    const after = blobToPersist(newId(), 10);
    await store.persist([after]);
    await store.close();
    store = await DurableStore.open(dir);
    assert.deepEqual(store.loaded.objects.map((o) => o.id).sort(), [before.id, after.id].sort());
  });

  it('a blobs folder gone read-only: IOError naming the file; inline blobs still persist', async () => {
    const dir = path.join(mountPoint!, 'data');
    store = await DurableStore.open(dir);
    // A read-only bind mount over blobs/ (remounting the whole disk read-only is refused while
    // lmdb has its files open for writing).
    const blobs = path.join(dir, 'blobs');
    execFileSync('mount', ['--bind', blobs, blobs]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', blobs]);
      const big = blobToPersist(newId(), 200_000);
      const file = path.join(blobs, big.id);
      await expectRejects(
        store.persist([big]),
        'IOError',
        new RegExp(`^cannot persist the blob of object ${big.id} to ${file}: EROFS`),
      );
      await store.persist([blobToPersist(newId(), 10)]);
    } finally {
      unmount(blobs);
    }
    await store.close();
    store = await DurableStore.open(dir);
    assert.equal(store.loaded.objects.length, 1);
    assert.deepEqual(blobFilesIn(dir), []);
  });
});
