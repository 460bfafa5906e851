import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { open } from 'lmdb';
import { DurableCatalog } from '../../../src/daemon/durable/catalog';
import { checksumOf } from '../../../src/daemon/durable/checksum';
import type { PersistedObject } from '../../../src/daemon/durable/records';
import { metadataToPersist, nameFor, newId, patternBytes } from '../../fixtures/durable';
import { onCleanup, tempPath } from '../../fixtures/setup';
import { expectRejects } from '../../fixtures/trellis-errors';

async function openCatalog(dir = tempPath('catalog')): Promise<DurableCatalog> {
  fs.mkdirSync(dir, { recursive: true });
  const catalog = await DurableCatalog.open(dir);
  onCleanup(() => catalog.close());
  return catalog;
}

function inlineBlob(id: string, bytes: Buffer): PersistedObject {
  return {
    id,
    typename: 'trellis::Blob',
    nbytes: bytes.length,
    createdAt: 1,
    members: {},
    fields: {},
    labels: {},
    blob: { size: bytes.length, checksum: checksumOf(bytes), stored: 'inline' },
    expiresAt: 1_900_000_000_000,
  };
}

function withoutBytes({ bytes: _bytes, ...record }: PersistedObject & { bytes?: unknown }): PersistedObject {
  return record;
}

describe('durable catalog', () => {
  it('keeps records, inline bytes and names across a reopen', async () => {
    const dir = tempPath('catalog');
    const blobId = newId();
    const bytes = patternBytes(blobId, 1000);
    const blob = inlineBlob(blobId, bytes);
    const tensor = withoutBytes(metadataToPersist(newId(), { data: blobId }));
    tensor.remoteMembers = {
      other: {
        id: 'o00ff000000000001',
        typename: 'trellis::Blob',
        nbytes: 8,
        instanceId: 255,
        createdAt: 2,
        labels: {},
        fields: {},
        members: {},
      },
    };
    const first = await openCatalog(dir);
    await first.commit({
      putObjects: [blob, tensor],
      inline: new Map([[blobId, bytes]]),
      putNames: [nameFor('prices', tensor.id)],
    });
    await first.close();

    const second = await openCatalog(dir);
    const contents = second.read();
    assert.deepEqual(contents.damaged, []);
    assert.deepEqual(
      contents.objects.sort((a, b) => a.id.localeCompare(b.id)),
      [blob, tensor].sort((a, b) => a.id.localeCompare(b.id)),
    );
    assert.deepEqual(contents.names, [nameFor('prices', tensor.id)]);
    const into = Buffer.alloc(bytes.length);
    await second.readInline(blobId, into, blob.blob!);
    assert.ok(into.equals(bytes));
  });

  it('applies deletes, puts and name changes of one commit together', async () => {
    const catalog = await openCatalog();
    const [a, b] = [newId(), newId()];
    const bytesA = patternBytes(a, 10);
    await catalog.commit({
      putObjects: [inlineBlob(a, bytesA)],
      inline: new Map([[a, bytesA]]),
      putNames: [nameFor('x', a)],
    });
    const bytesB = patternBytes(b, 20);
    await catalog.commit({
      deleteObjects: [a],
      putObjects: [inlineBlob(b, bytesB)],
      inline: new Map([[b, bytesB]]),
      dropNames: ['x'],
      putNames: [nameFor('y', b, 2)],
    });
    const contents = catalog.read();
    assert.deepEqual(
      contents.objects.map((o) => o.id),
      [b],
    );
    assert.deepEqual(contents.names, [nameFor('y', b, 2)]);
    await expectRejects(
      catalog.readInline(a, Buffer.alloc(10), { size: 10, checksum: checksumOf(bytesA) }),
      'IOError',
      /blob of object o\w+ is missing/,
    );
  });

  it('refuses inline bytes that do not match the records, before anything is written', async () => {
    const catalog = await openCatalog();
    const id = newId();
    const bytes = patternBytes(id, 10);
    await expectRejects(
      catalog.commit({ putObjects: [inlineBlob(id, bytes)] }),
      'InvalidArgument',
      new RegExp(`object ${id} is stored inline`),
    );
    await expectRejects(
      catalog.commit({ putObjects: [], inline: new Map([[id, bytes]]) }),
      'InvalidArgument',
      /inline bytes given for an object not stored inline/,
    );
    assert.deepEqual(catalog.read().objects, []);
  });

  it('detects changed inline bytes by their checksum', async () => {
    const catalog = await openCatalog();
    const id = newId();
    const bytes = patternBytes(id, 100);
    const record = inlineBlob(id, bytes);
    await catalog.commit({ putObjects: [record], inline: new Map([[id, bytes]]) });
    const wrong = { size: 100, checksum: checksumOf(Buffer.alloc(100)) };
    await expectRejects(
      catalog.readInline(id, Buffer.alloc(100), wrong),
      'IOError',
      new RegExp(`blob of object ${id} is damaged: checksum`),
    );
  });

  it('reports records that do not decode instead of serving them', async () => {
    const dir = tempPath('catalog');
    const catalog = await openCatalog(dir);
    const good = withoutBytes(metadataToPersist(newId(), {}));
    await catalog.commit({ putObjects: [good] });
    await catalog.close();
    // Written behind the catalog's back, as damage on disk would be.
    const env = open({ path: dir, maxDbs: 4, encoding: 'binary' });
    const objects = env.openDB('objects', { encoding: 'binary' });
    await objects.put('o0007000000000bad', Buffer.from([0xc1, 0xff]));
    await objects.put('o0007000000000bee', Buffer.from([0x80]));
    await env.close();

    const reopened = await openCatalog(dir);
    const contents = reopened.read();
    assert.deepEqual(contents.objects, [good]);
    assert.deepEqual(
      contents.damaged.map((d) => [d.key, d.reason.split(' (')[0]]),
      [
        ['o0007000000000bad', 'undecodable record'],
        ['o0007000000000bee', 'the record names id undefined'],
      ],
    );
  });

  it('refuses a catalog written in a later format', async () => {
    const dir = tempPath('catalog');
    await (await openCatalog(dir)).close();
    const env = open({ path: dir, maxDbs: 4 });
    await env.openDB('meta', { encoding: 'msgpack' }).put('format', 99);
    await env.close();
    fs.mkdirSync(dir, { recursive: true });
    await expectRejects(
      DurableCatalog.open(dir),
      'IOError',
      new RegExp(`the catalog ${dir} has format 99; this trellis reads format 1`),
    );
  });
});
