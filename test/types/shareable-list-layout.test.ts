/**
 * The ShareableList bytes are a format other languages may read and write: these tests check
 * the bytes against the layout documented in src/types/shareable-list-layout.ts, field by field,
 * and read a list written by hand from that documentation alone.
 */
import * as assert from 'node:assert/strict';
import { connect, isTrellisError, ShareableList, type Client } from '../../src/index';
import { startTestDaemon } from '../fixtures/daemon';
import { onCleanup } from '../fixtures/setup';

let client: Client;

async function sealedBlob(bytes: Buffer): Promise<string> {
  const writer = await client.createBlob(bytes.length, { typename: 'trellis::ShareableList' });
  writer.buffer.set(bytes);
  return writer.seal();
}

/** Header and slot table, as the layout comment spells them; payloads are filled in by the caller. */
function handWritten(
  slots: Array<{ tag: number; flags?: number; length: number; offset: number; capacity: number }>,
  size: number,
  version = 1,
): Buffer {
  const bytes = Buffer.alloc(size);
  bytes.write('TRSL', 0, 'latin1');
  bytes.writeUInt16LE(version, 4);
  bytes.writeUInt32LE(slots.length, 8);
  slots.forEach((slot, i) => {
    const at = 16 + 16 * i;
    bytes.writeUInt8(slot.tag, at);
    bytes.writeUInt8(slot.flags ?? 0, at + 1);
    bytes.writeUInt32LE(slot.length, at + 4);
    bytes.writeUInt32LE(slot.offset, at + 8);
    bytes.writeUInt32LE(slot.capacity, at + 12);
  });
  return bytes;
}

async function expectTypeMismatch(run: () => unknown, message: RegExp): Promise<void> {
  await assert.rejects(
    async () => run(),
    (error: unknown) => isTrellisError(error, 'TypeMismatch') && message.test(error.message),
  );
}

describe('ShareableList layout', () => {
  beforeEach(async () => {
    const daemon = await startTestDaemon();
    client = await connect(daemon.socket);
    onCleanup(() => client.close());
  });

  it('writes the documented header, slot table and payloads', async () => {
    const list = await ShareableList.create(client, ['hi', 7, true, -2n, 'é']);
    await list.freeze();
    const { buffer } = await client.getBlob(list.name);
    assert.equal(buffer.toString('latin1', 0, 4), 'TRSL');
    assert.equal(buffer.readUInt32LE(0), 0x4c535254);
    assert.equal(buffer.readUInt16LE(4), 1, 'version');
    assert.equal(buffer.readUInt32LE(8), 5, 'count');
    const slot = (i: number) => {
      const at = 16 + 16 * i;
      return {
        tag: buffer[at],
        flags: buffer[at + 1],
        length: buffer.readUInt32LE(at + 4),
        offset: buffer.readUInt32LE(at + 8),
        capacity: buffer.readUInt32LE(at + 12),
      };
    };
    const payloads = 16 + 16 * 5;
    assert.deepEqual(slot(0), { tag: 5, flags: 1, length: 2, offset: payloads, capacity: 8 });
    assert.equal(buffer.toString('utf8', payloads, payloads + 2), 'hi');
    assert.deepEqual(slot(1), { tag: 3, flags: 0, length: 8, offset: payloads + 8, capacity: 8 });
    assert.equal(buffer.readBigInt64LE(payloads + 8), 7n);
    assert.deepEqual(slot(2), { tag: 2, flags: 0, length: 0, offset: payloads + 16, capacity: 8 });
    assert.deepEqual(slot(3), { tag: 3, flags: 0, length: 8, offset: payloads + 24, capacity: 8 });
    assert.equal(buffer.readBigInt64LE(payloads + 24), -2n);
    assert.deepEqual(
      slot(4),
      { tag: 5, flags: 0, length: 2, offset: payloads + 32, capacity: 8 },
      'non-ASCII UTF-8 has no ASCII flag',
    );
    assert.equal(buffer.length, payloads + 40);
    assert.deepEqual(
      await client.listObjects({ pattern: 'trellis::ShareableList' }).then((objects) => objects.map((o) => o.id)),
      [list.name],
    );
  });

  it('reads a list written by hand from the documentation', async () => {
    // null, false, float64 2.5, bytes 01 02 03, UTF-8 "ça", int64 2^62
    const bytes = handWritten(
      [
        { tag: 0, length: 0, offset: 112, capacity: 0 },
        { tag: 1, length: 0, offset: 112, capacity: 0 },
        { tag: 4, length: 8, offset: 112, capacity: 8 },
        { tag: 6, length: 3, offset: 120, capacity: 8 },
        { tag: 5, length: 3, offset: 128, capacity: 8 },
        { tag: 3, length: 8, offset: 136, capacity: 8 },
      ],
      144,
    );
    bytes.writeDoubleLE(2.5, 112);
    bytes.set([1, 2, 3], 120);
    bytes.write('ça', 128, 'utf8');
    bytes.writeBigInt64LE(2n ** 62n, 136);
    const list = await ShareableList.open(client, await sealedBlob(bytes));
    assert.deepEqual(list.toArray(), [null, false, 2.5, Buffer.from([1, 2, 3]), 'ça', 2n ** 62n]);
  });

  it('reads ASCII strings whose payloads are not in slot order', async () => {
    // Slot 0's payload follows slot 1's, which a reader must not assume away.
    const first = 'the first string, stored second';
    const second = 'the second string, stored first';
    const bytes = handWritten(
      [
        { tag: 5, flags: 1, length: first.length, offset: 80, capacity: 32 },
        { tag: 5, flags: 1, length: second.length, offset: 48, capacity: 32 },
      ],
      112,
    );
    bytes.write(first, 80, 'latin1');
    bytes.write(second, 48, 'latin1');
    const list = await ShareableList.open(client, await sealedBlob(bytes));
    for (let pass = 0; pass < 3; pass++) assert.deepEqual(list.toArray(), [first, second], `pass ${pass + 1}`);
  });

  it('reads ASCII strings of short and long slots, with and without spare capacity, pass after pass', async () => {
    const strings = Array.from({ length: 200 }, (_, i) =>
      i % 3 === 0 ? `s${i}` : `a longer ascii string, number ${i}`,
    );
    for (const capacity of [0, 1024]) {
      const list = await ShareableList.create(client, strings, { capacity });
      await list.freeze();
      const opened = await ShareableList.open(client, list.name);
      for (let pass = 0; pass < 3; pass++)
        assert.deepEqual(opened.toArray(), strings, `capacity ${capacity}, pass ${pass + 1}`);
    }
  });

  it('refuses unknown versions and corrupt slots with TypeMismatch', async () => {
    const future = await sealedBlob(handWritten([], 16, 2));
    await expectTypeMismatch(
      () => ShareableList.open(client, future),
      new RegExp(`ShareableList ${future} has layout version 2; this trellis reads version 1`),
    );

    const tooMany = handWritten([], 32);
    tooMany.writeUInt32LE(1000, 8);
    const tooManyId = await sealedBlob(tooMany);
    await expectTypeMismatch(
      () => ShareableList.open(client, tooManyId),
      /claims 1000 slots, more than its 32 bytes can hold/,
    );

    const badTag = await ShareableList.open(
      client,
      await sealedBlob(handWritten([{ tag: 9, length: 0, offset: 32, capacity: 0 }], 32)),
    );
    await expectTypeMismatch(() => badTag.get(0), new RegExp(`ShareableList ${badTag.name}: slot 0 has unknown tag 9`));

    const pastEnd = await ShareableList.open(
      client,
      await sealedBlob(handWritten([{ tag: 5, length: 100, offset: 32, capacity: 8 }], 40)),
    );
    await expectTypeMismatch(() => pastEnd.toArray(), /slot 0 ends at byte 132, past the end of the 40-byte list/);
    const numberPastEnd = await ShareableList.open(
      client,
      await sealedBlob(handWritten([{ tag: 4, length: 8, offset: 36, capacity: 8 }], 40)),
    );
    await expectTypeMismatch(() => numberPastEnd.get(0), /slot 0 ends at byte 44, past the end of the 40-byte list/);
  });
});
