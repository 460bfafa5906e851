/**
 * A process killed with SIGKILL in the middle of persisting, again and again on one data dir:
 * after each kill, every persist that had resolved is there and whole, everything else that is
 * there is whole too, and no file is left that no record refers to.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DurableStore } from '../../../src/daemon/durable/durable-store';
import { startChild } from '../../fixtures/child';
import { blobFilesIn, patternBytes } from '../../fixtures/durable';
import { tempPath } from '../../fixtures/setup';

interface Persisted {
  id: string;
  blob: string;
  size: number;
}

/** Kills after this many resolved persists, one round each: early, mid-way and later kills. */
const KILL_AFTER = [1, 3, 6, 2, 9];

describe('durable store after SIGKILL', function () {
  this.timeout(180_000);

  it('keeps every resolved persist whole and leaves nothing half-written', async () => {
    const dir = tempPath('data');
    const resolved: Persisted[] = [];
    for (const [round, killAfter] of KILL_AFTER.entries()) {
      const child = startChild('durable-persist-loop.ts', [dir]);
      for (let i = 0; i < killAfter; i++) resolved.push(await child.next<Persisted>());
      child.kill('SIGKILL');
      await child.exited;
      // Persists that resolved between the last message we read and the kill count too.
      for (;;) {
        const late = await child.next<Persisted>(200).catch(() => undefined);
        if (late === undefined) break;
        resolved.push(late);
      }

      const store = await DurableStore.open(dir);
      try {
        const { objects, names, damaged, missingBlobs } = store.loaded;
        assert.deepEqual([damaged, missingBlobs], [[], []], `round ${round}`);
        const present = new Map(objects.map((o) => [o.id, o]));
        for (const { id, blob, size } of resolved) {
          assert.ok(present.has(id), `round ${round}: resolved persist of ${id} is missing`);
          assert.equal(present.get(id)!.members.data, blob);
          assert.equal(present.get(blob)?.nbytes, size);
        }
        // Whatever else is there (persists the kill cut short after their commit) is whole too.
        const expectedFiles: string[] = [];
        for (const object of objects) {
          if (object.blob === undefined) {
            assert.ok(present.has(object.members.data), `round ${round}: ${object.id} lost its member`);
            continue;
          }
          if (object.blob.stored === 'file') expectedFiles.push(object.id);
          const into = Buffer.alloc(object.nbytes);
          await store.readBlob(object.id, into);
          assert.ok(into.equals(patternBytes(object.id, object.nbytes)), `round ${round}: bytes of ${object.id}`);
        }
        for (const name of names)
          assert.ok(present.has(name.versions[0].id), `round ${round}: name ${name.name} dangles`);
        assert.deepEqual(blobFilesIn(dir), expectedFiles.sort(), `round ${round}: files without a record are gone`);
        assert.ok(!fs.readdirSync(path.join(dir, 'blobs')).some((f) => f.endsWith('.tmp')));
      } finally {
        await store.close();
      }
    }
  });
});
