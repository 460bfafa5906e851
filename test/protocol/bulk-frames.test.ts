import * as assert from 'node:assert/strict';
import { encodeFrameWithBytes, matchBulkReply, planReads } from '../../src/protocol/bulk-frames';
import { FrameReader } from '../../src/protocol/frame-reader';
import { encodeFrame, FrameDecoder, HEADER_BYTES } from '../../src/protocol/framing';

/** Feeds `bytes` to a FrameReader in pieces of `step` bytes; returns what it saw. */
function read(
  bytes: Buffer,
  step: number,
  stream: boolean,
): { bodies: unknown[]; streamed: Map<number, Buffer[]>; ended: number[] } {
  const bodies: unknown[] = [];
  const streamed = new Map<number, Buffer[]>();
  const ended: number[] = [];
  const reader = new FrameReader(1 << 20, {
    body: (body) => bodies.push(body),
    bulkStart: ({ seq }) => {
      if (!stream) return undefined;
      streamed.set(seq, []);
      // Pieces are only valid during the call: keep copies.
      return (piece) => streamed.get(seq)!.push(Buffer.from(piece));
    },
    bulkEnd: (seq) => ended.push(seq),
  });
  for (let at = 0; at < bytes.length; at += step) reader.push(bytes.subarray(at, at + step));
  return { bodies, streamed, ended };
}

describe('bulk frames (blob bytes on the RPC port)', function () {
  const parts = [Buffer.from('hello '), new Uint8Array([1, 2, 3]), Buffer.alloc(0), Buffer.from('world')];
  const joined = Buffer.concat(parts);

  it('a frame made from views decodes like any frame, the bytes joined at the path', () => {
    const reply = Buffer.concat(encodeFrameWithBytes({ seq: 300, reply: {} }, ['reply', 'data'], parts));
    const request = Buffer.concat(
      encodeFrameWithBytes(
        { kind: 'writeBlob', seq: 7, body: { id: 'o0000000000000001', offset: 5 } },
        ['body', 'data'],
        parts,
      ),
    );
    const decoded = new FrameDecoder().push(Buffer.concat([reply, request])) as Array<Record<string, unknown>>;
    assert.deepEqual(decoded[0], { seq: 300, reply: { data: joined } });
    assert.deepEqual(decoded[1], {
      kind: 'writeBlob',
      seq: 7,
      body: { id: 'o0000000000000001', offset: 5, data: joined },
    });
    assert.equal(reply.readUInt32LE(4), reply.length - HEADER_BYTES, 'the header counts the bytes that follow');
  });

  it('the parts are sent as they are, not copied into the frame', () => {
    const source = Buffer.from('shared memory');
    const [, view] = encodeFrameWithBytes({ seq: 1, reply: {} }, ['reply', 'data'], [source]);
    assert.equal(view.buffer, source.buffer);
  });

  it('recognizes a readBlobs reply from its first bytes, and nothing else', () => {
    const frame = Buffer.concat(encodeFrameWithBytes({ seq: 70000, reply: {} }, ['reply', 'data'], [joined]));
    const body = frame.subarray(HEADER_BYTES);
    const start = matchBulkReply(body.subarray(0, 64), body.length);
    assert.deepEqual(start, { seq: 70000, prefixBytes: body.length - joined.length, dataBytes: joined.length });
    assert.equal(
      matchBulkReply(body.subarray(0, 64), body.length + 1),
      undefined,
      'data must run to the end of the body',
    );
    for (const other of [
      { seq: 1, error: { code: 'ObjectNotFound', message: 'x' } },
      { seq: 1, reply: { data: joined, more: 1 } },
      { seq: 1, reply: {} },
    ]) {
      const encoded = encodeFrame(other).subarray(HEADER_BYTES);
      assert.equal(matchBulkReply(encoded.subarray(0, 64), encoded.length), undefined, JSON.stringify(other));
    }
  });

  it('FrameReader streams bulk replies and decodes the rest, whatever the chunking', () => {
    const bytes = Buffer.concat([
      encodeFrame({ seq: 1, reply: { instanceId: 3 } }),
      ...encodeFrameWithBytes({ seq: 2, reply: {} }, ['reply', 'data'], parts),
      ...encodeFrameWithBytes({ seq: 3, reply: {} }, ['reply', 'data'], []),
      encodeFrame({ seq: 4, error: { code: 'InvalidArgument', message: 'no' } }),
    ]);
    for (const step of [1, 2, 5, 13, 64, bytes.length]) {
      const streamed = read(bytes, step, true);
      assert.deepEqual(
        streamed.bodies,
        [
          { seq: 1, reply: { instanceId: 3 } },
          { seq: 4, error: { code: 'InvalidArgument', message: 'no' } },
        ],
        `step ${step}`,
      );
      assert.deepEqual(Buffer.concat(streamed.streamed.get(2)!), joined, `step ${step}`);
      assert.deepEqual(streamed.ended, [2, 3]);
      const whole = read(bytes, step, false);
      assert.equal(whole.bodies.length, 4, 'without a consumer, bulk replies are decoded whole');
      assert.deepEqual((whole.bodies[1] as { reply: { data: Buffer } }).reply.data, joined);
    }
  });

  it('FrameReader refuses an oversize frame from its header', () => {
    const reader = new FrameReader(1024, {
      body: () => undefined,
      bulkStart: () => undefined,
      bulkEnd: () => undefined,
    });
    const head = Buffer.alloc(HEADER_BYTES);
    head.writeUInt16LE(0x5254, 0);
    head.writeUInt8(1, 2);
    head.writeUInt32LE(4096, 4);
    assert.throws(() => reader.push(head), {
      code: 'ProtocolError',
      message: /frame of 4096 bytes exceeds the 1024-byte limit/,
    });
  });

  it('planReads batches small blobs and cuts large ones into chunks', () => {
    const plan = planReads(
      [
        { id: 'a', size: 3 },
        { id: 'b', size: 0 },
        { id: 'c', size: 10 },
        { id: 'd', size: 2 },
      ],
      4,
    );
    assert.deepEqual(plan, [
      [
        { id: 'a', offset: 0, length: 3 },
        { id: 'c', offset: 0, length: 1 },
      ],
      [{ id: 'c', offset: 1, length: 4 }],
      [{ id: 'c', offset: 5, length: 4 }],
      [
        { id: 'c', offset: 9, length: 1 },
        { id: 'd', offset: 0, length: 2 },
      ],
    ]);
    assert.deepEqual(planReads([{ id: 'e', size: 0 }], 4), []);
  });
});
