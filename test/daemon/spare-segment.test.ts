/**
 * --spare-segment: a real daemon keeps a segment reserved for the first blob that needs a new one
 * of that size, hands it over, and reserves the next in the background; the spare counts toward
 * --size (memoryReserved) and gives way to a blob that needs its room.
 */
import * as assert from 'node:assert/strict';
import { connect, type Client } from '../../src/index';
import { parseArgs, resolveOptions } from '../../src/daemon/options';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { trellisOk } from '../fixtures/trellis-cli';

const MiB = 1024 * 1024;

/** Waits (bounded) until the daemon's status satisfies `done`; returns that status. */
async function untilStatus(client: Client, done: (status: Awaited<ReturnType<Client['status']>>) => boolean) {
  const deadline = Date.now() + 20_000;
  let status = await client.status();
  while (!done(status) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    status = await client.status();
  }
  assert.ok(done(status), `status never got there: ${JSON.stringify(status)}`);
  return status;
}

async function untilOutput(daemon: TestDaemon, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!pattern.test(daemon.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.match(daemon.output(), pattern);
}

describe('--spare-segment', function () {
  this.timeout(60_000);

  it('hands the spare to the first blob that needs a segment its size, and reserves another', async () => {
    // Standard segments of 64 MiB (an eighth of 512 MiB); an 80 MiB blob needs one of its own.
    const daemon = await startTestDaemon(['--size', '512MiB', '--spare-segment', '96MiB', '--log-level', 'debug']);
    const client = await connect(daemon.socket);
    const before = await untilStatus(client, (status) => status.memorySpare > 0);
    assert.equal(before.memorySpare, 96 * MiB);
    assert.equal(before.memoryReserved, 64 * MiB + 96 * MiB, 'the spare counts toward --size');
    assert.equal(before.segments, 1, 'but is no segment in use');
    const printed = await trellisOk(daemon.socket, ['status']);
    assert.match(printed.text, /^memory .*\(160 MiB reserved in 1 segment and a 96 MiB spare, /m);

    const writer = await client.createBlob(80 * MiB);
    writer.buffer.fill(7);
    const id = await writer.seal();
    await untilOutput(daemon, /spare segment taken segment=\d+ bytes=100663296 blob=83886080/);
    const after = await untilStatus(client, (status) => status.memorySpare > 0);
    assert.equal(after.segments, 2, 'the spare became the blob segment');
    assert.equal(after.memoryReserved, 64 * MiB + 96 * MiB + 96 * MiB, 'and a new spare stands ready');

    const reader = await connect(daemon.socket);
    const blob = await reader.getBlob(id);
    assert.equal(blob.size, 80 * MiB);
    assert.equal(blob.buffer[80 * MiB - 1], 7);
    await reader.close();
    await client.close();
    assert.equal(await daemon.stop(), 0);
  });

  it('gives its room to a blob that needs it under --size', async () => {
    // 32 MiB standard segment + a 128 MiB spare of 256 MiB: a 200 MiB blob fits only without the spare.
    const daemon = await startTestDaemon(['--size', '256MiB', '--spare-segment', '128MiB', '--log-level', 'debug']);
    const client = await connect(daemon.socket);
    await untilStatus(client, (status) => status.memorySpare > 0);
    const writer = await client.createBlob(200 * MiB);
    writer.buffer.fill(3);
    await writer.seal();
    await untilOutput(daemon, /spare segment given back: its room is needed for a blob of 200 MiB/);
    const status = await client.status();
    assert.equal(status.memorySpare, 0);
    assert.equal(status.memoryReserved, 32 * MiB + 200 * MiB);
    await client.close();
    assert.equal(await daemon.stop(), 0);
  });

  it('is off by default, and refused larger than --size', async () => {
    assert.equal(resolveOptions({}).spareSegmentBytes, 0);
    assert.equal(resolveOptions(parseArgs(['--spare-segment', '1GiB'])).spareSegmentBytes, 1024 * MiB);
    assert.equal(resolveOptions(parseArgs(['--spare-segment', '0'])).spareSegmentBytes, 0);
    await assert.rejects(startTestDaemon(['--size', '256MiB', '--spare-segment', '1GiB']), {
      message: /--spare-segment 1 GiB is larger than --size 256 MiB/,
    });
  });
});
