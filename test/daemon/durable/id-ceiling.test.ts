/**
 * The id ceiling in the data dir's catalog (src/daemon/durable/id-ceiling.ts): a daemon restarted
 * on its data dir hands out no id it may have handed out before, stored or not (a put ring's
 * block, an object never persisted), even when the clock has stepped back meanwhile. The clock
 * of the machine is not touched: a ceiling written ahead of it stands for ids handed out before
 * the clock stepped back by as much.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { DurableCatalog } from '../../../src/daemon/durable/catalog';
import { CATALOG_DIR } from '../../../src/daemon/durable/data-dir';
import { DurableStore } from '../../../src/daemon/durable/durable-store';
import { CEILING_LEAD_MICROS, IdCeiling } from '../../../src/daemon/durable/id-ceiling';
import { IdGenerator, SEQUENCE_SPACE, sequenceOf } from '../../../src/protocol/ids';
import { waitFor } from '../../fixtures/cluster';
import { DataDirDaemon } from '../../fixtures/data-dir-daemon';
import { tempPath } from '../../fixtures/setup';

/** An hour in microseconds, the ids' clock. */
const HOUR_MICROS = 3_600_000_000;
/** The clock as ids count it (src/protocol/ids.ts). */
const nowMicros = () => Math.floor((performance.timeOrigin + performance.now()) * 1000) % SEQUENCE_SPACE;

describe('id ceiling', function () {
  this.timeout(30_000);
  const subject = new DataDirDaemon(['--size', '64MiB']);

  /** Runs `use` on the catalog of the stopped daemon's data dir. */
  const withCatalog = async <T>(use: (catalog: DurableCatalog) => Promise<T> | T): Promise<T> => {
    const catalog = await DurableCatalog.open(path.join(subject.dataDir, CATALOG_DIR));
    try {
      return await use(catalog);
    } finally {
      await catalog.close();
    }
  };

  it('is kept above every id handed out, put ring blocks and unpersisted objects too', async () => {
    const ids = [
      await subject.client.put({ small: 1 }),
      ...(await subject.client.putMany([{ n: 1 }, { n: 2 }, { n: 3 }])),
      await subject.client.put(Buffer.alloc(1 << 20, 7)),
    ];
    await subject.client.close();
    await subject.daemon.stop();
    const ceiling = await withCatalog((catalog) => catalog.idCeiling());
    assert.ok(ceiling !== undefined, 'a ceiling is written');
    for (const id of ids) assert.ok(sequenceOf(id) < ceiling, `${id} is under the ceiling ${ceiling}`);
    await subject.start();
  });

  it('a restart after the clock stepped back hands out ids past the ceiling, not those it gave before', async () => {
    await subject.client.close();
    await subject.daemon.stop();
    // As if ids had been handed out up to an hour ahead of the clock, which then stepped back.
    const ceiling = nowMicros() + HOUR_MICROS;
    await withCatalog((catalog) => catalog.setIdCeiling(ceiling));
    await subject.start();

    const ids = [
      await subject.client.put({ small: 1 }),
      ...(await subject.client.putMany([{ n: 1 }, { n: 2 }])),
      await subject.client.put(Buffer.alloc(1 << 20, 7), { persist: true }),
    ];
    for (const id of ids) assert.ok(sequenceOf(id) > ceiling, `${id} is past the ceiling ${ceiling}`);
    await subject.client.close();
    await subject.daemon.stop();
    const raised = await withCatalog((catalog) => catalog.idCeiling());
    assert.ok(raised! > Math.max(...ids.map(sequenceOf)), 'and the next ceiling is past them');
    await subject.start();
  });

  it('after a restart past the ceiling, put rings still get whole blocks of ids', async () => {
    const requestsFor = async (): Promise<number> => {
      const before = (await subject.client.status()).requests;
      for (let i = 0; i < 4; i++) await subject.client.putMany(Array.from({ length: 1000 }, (_, n) => ({ n })));
      return (await subject.client.status()).requests - before - 1;
    };
    const usual = await requestsFor();
    await subject.client.close();
    await subject.daemon.stop();
    await withCatalog((catalog) => catalog.setIdCeiling(nowMicros() + HOUR_MICROS));
    await subject.start();
    await subject.client.put({ first: true });
    const afterRestart = await requestsFor();
    // Blocks cut short to the fewest ids (the counter is ahead of the clock) would take a grant
    // every few hundred puts.
    assert.ok(afterRestart <= usual + 2, `${afterRestart} requests for 4000 puts, ${usual} before the restart`);
  });

  it('is raised in the background once ids used half its lead; a stop waits for the write', async () => {
    const store = await DurableStore.open(tempPath('ceiling'));
    const ids = new IdGenerator(7);
    const ceiling = new IdCeiling(ids, store);
    try {
      await ceiling.start();
      const first = store.idCeiling!;
      assert.ok(first >= nowMicros() + CEILING_LEAD_MICROS - 5_000_000, 'a lead ahead of the clock');
      // Ids handed out at the rate of half a lead (as 30 s of puts would): one raise, not awaited.
      ids.advanceTo(first - CEILING_LEAD_MICROS / 2 - 1);
      const { first: block, count } = ids.reserve(1000, 1000, 0);
      assert.equal(store.idCeiling, first, 'the put path does not wait for it');
      await waitFor('the ceiling to be raised', async () => store.idCeiling! > first, 5_000);
      assert.ok(store.idCeiling! >= block + count - 1 + CEILING_LEAD_MICROS);
      ids.advanceTo(store.idCeiling! - CEILING_LEAD_MICROS / 2);
      ids.next();
      await ceiling.stop();
      assert.ok(store.idCeiling! > sequenceOf(ids.next()), 'the write under way finished before the stop');
    } finally {
      await ceiling.stop();
      await store.close();
    }
  });
});
