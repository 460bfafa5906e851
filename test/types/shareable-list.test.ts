import * as assert from 'node:assert/strict';
import { connect, ShareableList, type Client } from '../../src/index';
import { startChild, type ChildHandle } from '../fixtures/child';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { onCleanup } from '../fixtures/setup';
import { settledStatus } from '../fixtures/status';
import { checksum, describeItem, generatedItems } from '../fixtures/children/shareable-list-items';
import { expectRejects, expectThrows } from '../fixtures/trellis-errors';

interface ReaderReport {
  items?: string[];
  frozen?: boolean;
  length?: number;
  setError?: { code: string; message: string };
  error?: { code: string; message: string };
}

let daemon: TestDaemon;
let client: Client;

async function openClient(): Promise<Client> {
  const opened = await connect(daemon.socket);
  onCleanup(() => opened.close());
  return opened;
}

/** Opens the list in another process; the child stays alive until told 'exit'. */
async function readInChild(name: string): Promise<{ child: ChildHandle; report: ReaderReport }> {
  const child = startChild('shareable-list-reader.ts', [daemon.socket, name]);
  return { child, report: await child.next<ReaderReport>() };
}

function describeAll(items: Iterable<unknown>): string[] {
  return [...items].map(describeItem);
}

async function memoryUsageSettlesAt(expected: number): Promise<void> {
  const status = await settledStatus(client, ({ memoryUsage }) => memoryUsage === expected);
  assert.equal(status.memoryUsage, expected, 'memory usage did not return to its baseline');
}

describe('ShareableList', () => {
  beforeEach(async () => {
    daemon = await startTestDaemon();
    client = await openClient();
  });

  it('reads back the reference example, in order and typed, in another process', async () => {
    const list = await ShareableList.create(client, [Buffer.from('a'), 'bb', 1234, 56.78, true]);
    assert.match(list.name, /^o[0-9a-f]{16}$/);
    assert.equal(list.length, 5);
    assert.equal(list.frozen, false);
    list.set(4, false);
    assert.equal(list.get(4), false);
    await list.freeze();
    assert.equal(list.frozen, true);

    const expected = ['bytes:61', 'string:"bb"', 'number:1234', 'number:56.78', 'boolean:false'];
    assert.deepEqual(describeAll(list), expected);
    assert.ok(client.isSharedMemory(list.get(0) as Buffer), 'a frozen list hands out views of shared memory');
    const { child, report } = await readInChild(list.name);
    assert.deepEqual(report.items, expected);
    assert.equal(report.frozen, true);
    assert.equal(report.length, 5);
    child.send('exit');
    assert.equal(await child.exited, 0);
  });

  it('keeps unicode, empty values, int64 extremes and special floats exact', async () => {
    const items = [
      'héllo wörld',
      '漢字とかな',
      '🎉 emoji, e\u0301 combining',
      '',
      Buffer.alloc(0),
      new Uint8Array([0, 255, 7]),
      -1,
      -(2 ** 53 - 1),
      2 ** 53 - 1,
      2n ** 63n - 1n,
      -(2n ** 63n),
      2n ** 53n,
      5n,
      NaN,
      -0,
      Infinity,
      -Infinity,
      0.1,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      2 ** 60,
      null,
    ];
    const expected = [
      'string:"héllo wörld"',
      'string:"漢字とかな"',
      'string:"🎉 emoji, e\u0301 combining"',
      'string:""',
      'bytes:',
      'bytes:00ff07',
      'number:-1',
      'number:-9007199254740991',
      'number:9007199254740991',
      'bigint:9223372036854775807',
      'bigint:-9223372036854775808',
      // Past 2^53 an integer is a bigint; a small bigint comes back as a number.
      'bigint:9007199254740992',
      'number:5',
      'number:NaN',
      'number:-0',
      'number:Infinity',
      'number:-Infinity',
      'number:0.1',
      `number:${Number.MAX_VALUE}`,
      `number:${Number.MIN_VALUE}`,
      // A JS number past 2^53 is a float, and stays a number.
      `number:${2 ** 60}`,
      'null',
    ];
    const list = await ShareableList.create(client, items);
    assert.deepEqual(describeAll(list.toArray()), expected, 'before freeze, in the creator');
    await list.freeze();
    assert.deepEqual(describeAll(list.toArray()), expected, 'after freeze, in the creator');
    const { child, report } = await readInChild(list.name);
    assert.deepEqual(report.items, expected, 'in another process');
    child.send('exit');
  });

  it('lets set change a slot to any type that fits its capacity', async () => {
    const list = await ShareableList.create(client, ['abcdefgh', 1, null, 'abc', ''], { capacity: 0 });
    list.set(0, 2n ** 63n - 1n);
    list.set(1, 'eight ch');
    list.set(2, 3.5);
    list.set(3, Buffer.from('12345678'));
    list.set(4, true);
    list.set(4, Buffer.alloc(0));
    assert.deepEqual(describeAll(list), [
      'bigint:9223372036854775807',
      'string:"eight ch"',
      'number:3.5',
      'bytes:3132333435363738',
      'bytes:',
    ]);
    list.set(3, 'ab');
    assert.equal(list.get(3), 'ab');

    // Before freeze, bytes come back as copies: changing one changes neither the list nor what
    // a later get returns, and a later set does not change a copy already handed out.
    list.set(3, Buffer.from('abc'));
    const copy = list.get(3) as Buffer;
    copy[0] = 0x7a;
    list.set(3, Buffer.from('xyz'));
    assert.equal(copy.toString(), 'zbc');
    assert.equal((list.get(3) as Buffer).toString(), 'xyz');

    const roomy = await ShareableList.create(client, [1, 'x'], { capacity: 32 });
    roomy.set(0, 'y'.repeat(32));
    roomy.set(1, Buffer.alloc(32, 1));
    expectThrows(
      () => roomy.set(0, 'y'.repeat(33)),
      'InvalidArgument',
      /item 0 does not fit: the new value needs 33 bytes and the slot holds 32/,
    );
  });

  it('refuses a set that does not fit, naming the index and sizes, and changes nothing', async () => {
    const list = await ShareableList.create(client, ['bb', 1234, 'héllo', Buffer.from('abc')]);
    const before = describeAll(list);
    expectThrows(
      () => list.set(0, 'nine byte'),
      'InvalidArgument',
      /item 0 does not fit: the new value needs 9 bytes and the slot holds 8/,
    );
    // 'é' is two bytes in UTF-8: 'héllo' takes 6 and its slot 8; 'ééééé' needs 10.
    expectThrows(
      () => list.set(2, 'ééééé'),
      'InvalidArgument',
      /item 2 does not fit: the new value needs 10 bytes and the slot holds 8/,
    );
    expectThrows(
      () => list.set(3, Buffer.alloc(9)),
      'InvalidArgument',
      /item 3 does not fit: the new value needs 9 bytes and the slot holds 8/,
    );
    assert.deepEqual(describeAll(list), before);
  });

  it('refuses indexes out of range or not integers', async () => {
    const list = await ShareableList.create(client, ['a', 'b', 'c']);
    const before = describeAll(list);
    for (const index of [3, -1, 100]) {
      expectThrows(
        () => list.set(index, 'z'),
        'InvalidArgument',
        new RegExp(`set\\(${index}\\): the index is out of range; valid indexes are 0\\.\\.2`),
      );
      expectThrows(
        () => list.get(index),
        'InvalidArgument',
        new RegExp(`get\\(${index}\\): the index is out of range`),
      );
    }
    for (const index of [1.5, NaN, '1' as unknown as number, Symbol('i') as unknown as number]) {
      expectThrows(
        () => list.set(index, 'z'),
        'InvalidArgument',
        /the index is not an integer; valid indexes are 0\.\.2/,
      );
      expectThrows(() => list.get(index), 'InvalidArgument', /the index is not an integer/);
    }
    const empty = await ShareableList.create(client, []);
    assert.equal(empty.length, 0);
    assert.deepEqual(empty.toArray(), []);
    expectThrows(() => empty.get(0), 'InvalidArgument', /get\(0\): the index is out of range; the list is empty/);
    assert.deepEqual(describeAll(list), before);
  });

  it('refuses unsupported item types in set and in create', async () => {
    const list = await ShareableList.create(client, ['aaaaaaaa', 1]);
    const before = describeAll(list);
    const unsupported: Array<[unknown, RegExp]> = [
      [{}, /unsupported type object \(Object\)/],
      [[1, 2], /unsupported type object \(Array\)/],
      [new Date(0), /unsupported type object \(Date\)/],
      [new Float64Array(1), /unsupported type object \(Float64Array\)/],
      [undefined, /unsupported type undefined/],
      [Symbol('s'), /unsupported type symbol/],
      [() => 1, /unsupported type function/],
      [2n ** 63n, /bigint 9223372036854775808 is outside the int64 range/],
      [-(2n ** 63n) - 1n, /bigint -9223372036854775809 is outside the int64 range/],
    ];
    for (const [value, message] of unsupported) {
      expectThrows(
        () => list.set(1, value as never),
        'InvalidArgument',
        new RegExp(`ShareableList ${list.name}: set: item 1: ${message.source}`),
      );
    }
    assert.deepEqual(describeAll(list), before);

    const objects = (await client.status()).objects;
    const usage = (await client.status()).memoryUsage;
    await expectRejects(
      ShareableList.create(client, ['ok', 2, { no: 1 } as never]),
      'InvalidArgument',
      /ShareableList\.create: item 2: unsupported type object \(Object\)/,
    );
    // eslint-disable-next-line no-sparse-arrays -- a hole, which reads as undefined
    const holey = [1, , 3];
    await expectRejects(
      ShareableList.create(client, holey as never),
      'InvalidArgument',
      /item 1: unsupported type undefined/,
    );
    await expectRejects(
      ShareableList.create(client, 42 as never),
      'InvalidArgument',
      /items must be an array or another iterable, got number/,
    );
    await expectRejects(
      ShareableList.create(client, [1], { capacity: -8 }),
      'InvalidArgument',
      /capacity must be a non-negative integer number of bytes, got -8/,
    );
    assert.equal((await client.status()).objects, objects, 'a refused create makes no object');
    assert.equal((await client.status()).memoryUsage, usage);
  });

  it('refuses set once frozen, and on a list opened here or in another process', async () => {
    const list = await ShareableList.create(client, ['a', 1]);
    const freezing = list.freeze();
    expectThrows(
      () => list.set(0, 'b'),
      'AlreadySealed',
      new RegExp(`ShareableList ${list.name}: cannot set item 0: it is frozen`),
    );
    await freezing;
    await list.freeze(); // again: nothing to do
    expectThrows(() => list.set(1, 2), 'AlreadySealed', /cannot set item 1: it is frozen/);
    expectThrows(() => list.set(Symbol('i') as never, 2), 'AlreadySealed', /cannot set item Symbol\(i\): it is frozen/);
    assert.deepEqual(describeAll(list), ['string:"a"', 'number:1']);

    const opened = await ShareableList.open(await openClient(), list.name);
    assert.equal(opened.frozen, true);
    await opened.freeze(); // an opened list is frozen already
    expectThrows(
      () => opened.set(0, 'b'),
      'AlreadySealed',
      new RegExp(`ShareableList ${list.name}: cannot set item 0: it was opened read-only`),
    );

    const { child, report } = await readInChild(list.name);
    assert.equal(report.setError?.code, 'AlreadySealed');
    assert.match(report.setError!.message, /cannot set item 0: it was opened read-only/);
    assert.deepEqual(report.items, ['string:"a"', 'number:1']);
    child.send('exit');
  });

  it('refuses to open a list that is not frozen, is unknown, or is not a list', async () => {
    const list = await ShareableList.create(client, ['not yet']);
    const { report } = await readInChild(list.name);
    assert.equal(report.error?.code, 'NotSealed');
    assert.match(
      report.error!.message,
      new RegExp(`ShareableList ${list.name} is not frozen yet: its creator must call freeze\\(\\)`),
    );
    await expectRejects(ShareableList.open(await openClient(), list.name), 'NotSealed', /is not frozen yet/);

    await expectRejects(
      ShareableList.open(client, 'o0000ffffffffffff'),
      'ObjectNotFound',
      /object o0000ffffffffffff does not exist/,
    );
    const unknown = await readInChild('o0000fffffffffffe');
    assert.equal(unknown.report.error?.code, 'ObjectNotFound');
    assert.match(unknown.report.error!.message, /o0000fffffffffffe does not exist/);
    await expectRejects(ShareableList.open(client, 'my-list'), 'InvalidArgument', /"my-list" is not an object id/);

    const writer = await client.createBlob(64);
    writer.buffer.fill(7);
    const blobId = await writer.seal();
    await expectRejects(
      ShareableList.open(client, blobId),
      'TypeMismatch',
      new RegExp(`object ${blobId} is not a ShareableList`),
    );
  });

  it('is read whole by 8 processes at once: 100,000 items', async function () {
    this.timeout(120_000);
    const count = 100_000;
    const items = generatedItems(count);
    const list = await ShareableList.create(client, items);
    await list.freeze();
    const expected = checksum(items);
    assert.equal(checksum(list), expected);

    const readers = Array.from({ length: 8 }, () => startChild('shareable-list-verify.ts', [daemon.socket, list.name]));
    const reports = await Promise.all(
      readers.map((child) =>
        child.next<{ length: number; mismatches: number; firstMismatch?: string; checksum: string }>(90_000),
      ),
    );
    for (const report of reports) {
      assert.equal(report.length, count);
      assert.equal(report.mismatches, 0, report.firstMismatch);
      assert.equal(report.checksum, expected);
    }
    assert.deepEqual(await Promise.all(readers.map((child) => child.exited)), Array(8).fill(0));
  });

  it('returns strings that stay as they were after the list is deleted and its memory reused', async () => {
    const baseline = (await client.status()).memoryUsage;
    const strings = Array.from({ length: 300 }, (_, i) =>
      i % 2 ? `an ascii string long enough to be a slice, ${i}` : `grüße ${i}`,
    );
    const list = await ShareableList.create(client, strings);
    await list.freeze();
    const read = list.toArray();
    const size = (await client.getBlob(list.name)).size;
    await client.delete(list.name);
    await memoryUsageSettlesAt(baseline);

    // The freed memory goes to the next blob of that size; overwrite all of it.
    const writer = await client.createBlob(size);
    writer.buffer.fill('X');
    await writer.seal();
    assert.deepEqual(read, strings);
  });

  it('returns memory to its baseline after delete, once the last reader lets go', async () => {
    const baseline = (await client.status()).memoryUsage;
    const list = await ShareableList.create(client, generatedItems(1000));
    await list.freeze();
    const expected = describeAll(list);
    assert.ok((await client.status()).memoryUsage > baseline);

    const { child, report } = await readInChild(list.name);
    assert.deepEqual(report.items, expected);
    await client.delete(list.name);
    assert.equal(await client.exists(list.name), false);
    // The reader still maps the list: it is not freed under it.
    child.send('again');
    assert.deepEqual((await child.next<ReaderReport>()).items, expected);
    assert.ok((await client.status()).memoryUsage > baseline);
    child.send('exit');
    assert.equal(await child.exited, 0);
    await memoryUsageSettlesAt(baseline);

    // A list never frozen is reclaimed when its creator goes.
    const creator = await openClient();
    await ShareableList.create(creator, ['abandoned', 1, 2, 3]);
    assert.ok((await client.status()).memoryUsage > baseline);
    await creator.close();
    await memoryUsageSettlesAt(baseline);
  });
});
