/**
 * What a daemon that runs for months keeps of the requests it answered: a small value it stores
 * (a metadata field with bytes) must hold its own bytes, not the socket chunk it arrived in. The
 * daemon runs in a child that reports its memory after full garbage collections
 * (fixtures/children/measured-daemon.ts).
 */
import * as assert from 'node:assert/strict';
import { connect } from '../../src/index';
import { tempPath, onCleanup } from '../fixtures/setup';
import { startWorker, type Worker } from '../fixtures/worker';

const VALUES = 200;
const VALUE_BYTES = 100;
/** Bytes riding in the same frame as each value: copied into shared memory, never kept in the heap. */
const PAD_BYTES = 48 * 1024;
/** Room for the objects' own bookkeeping (ids, maps, views) beside the values' bytes. */
const SLACK_BYTES = 1024 * 1024;

const arrayBuffersOf = async (daemon: Worker) => (await daemon.run<NodeJS.MemoryUsage>('memory')).arrayBuffers;

describe('daemon memory: what stored small values keep', function () {
  it('values that came in large frames hold their own bytes, not the frames', async () => {
    const socket = tempPath('measured.sock');
    const daemon = await startWorker(socket, { script: 'measured-daemon.ts' });
    const client = await connect(socket);
    onCleanup(() => client.close());
    // A first round so the connection, pools and code are warm before the baseline.
    await client.createMetadata({ typename: 'test::Padded', data: Buffer.alloc(VALUE_BYTES) });
    const before = await arrayBuffersOf(daemon);
    for (let i = 0; i < VALUES; i++) {
      const data = Buffer.alloc(VALUE_BYTES, i);
      // One frame of ~48 KiB: the value's bytes and a member stored in shared memory.
      await client.createMetadata(
        { typename: 'test::Padded', data },
        { inlineMembers: { pad: Buffer.alloc(PAD_BYTES, i) } },
      );
    }
    const grown = (await arrayBuffersOf(daemon)) - before;
    assert.ok(
      grown < VALUES * VALUE_BYTES + SLACK_BYTES,
      `the daemon's array buffers grew by ${grown} bytes for ${VALUES} values of ${VALUE_BYTES} bytes ` +
        `(each frame was ${PAD_BYTES} bytes)`,
    );
  });
});
