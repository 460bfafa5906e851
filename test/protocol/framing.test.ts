import * as assert from 'node:assert/strict';
import { encodeFrame, FRAME_MAGIC, FrameDecoder, HEADER_BYTES } from '../../src/protocol/framing';
import { PROTOCOL_VERSION } from '../../src/protocol/messages';
import { detachedId, ID_PATTERN, IdGenerator, instanceOf, isObjectId } from '../../src/protocol/ids';

describe('framing', () => {
  it('round-trips bodies split at every byte boundary', () => {
    const bodies = [
      { kind: 'createBlob', seq: 1, body: { size: 10 } },
      { seq: 2, reply: { ids: ['a', 'b'] } },
      'x'.repeat(300),
    ];
    const stream = Buffer.concat(bodies.map(encodeFrame));
    for (let cut = 1; cut < stream.length; cut += 7) {
      const decoder = new FrameDecoder();
      const out = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
      assert.deepEqual(out, bodies);
    }
  });

  it('decodes every frame of a chunk in place, and frames that span chunks', () => {
    const bodies = Array.from({ length: 5 }, (_, i) => ({ seq: i, reply: { data: Buffer.alloc(i * 3, i) } }));
    const stream = Buffer.concat(bodies.map(encodeFrame));
    const decoder = new FrameDecoder();
    // Two frames and a half, the rest, then nothing: every body once, in order, to one list.
    const cut = encodeFrame(bodies[0]).length + encodeFrame(bodies[1]).length + 5;
    const out: unknown[] = [];
    assert.equal(decoder.push(stream.subarray(0, cut), out), out);
    assert.equal(out.length, 2);
    decoder.push(stream.subarray(cut), out);
    decoder.push(Buffer.alloc(0), out);
    assert.deepEqual(
      out.map((body) => JSON.parse(JSON.stringify(body))),
      bodies.map((body) => JSON.parse(JSON.stringify(body))),
    );
  });

  it('decodes the same bodies however the stream is cut: byte by byte, three pieces, headers split', () => {
    // Strings past the first 180 bytes of a chunk take msgpackr's native string path, which reads
    // up to the frame's end in the chunk's memory: a later frame must not leak into an earlier one.
    const bodies = [
      { kind: 'putBlobs', seq: 1, body: { sizes: [3], data: Buffer.from([1, 2, 3]) } },
      { seq: 2, reply: { ids: ['o0123456789abcdef', 'ünïcode '.repeat(30)] } },
      { seq: 3, reply: {} },
      { seq: 4, reply: { name: 'a/b', text: 'y'.repeat(200), data: Buffer.alloc(300, 9) } },
    ];
    const stream = Buffer.concat(bodies.map(encodeFrame));
    const expected = JSON.stringify(bodies);
    const decode = (cuts: number[]): string => {
      const decoder = new FrameDecoder();
      const out: unknown[] = [];
      let at = 0;
      // Each piece its own Buffer, as a socket's chunks are.
      for (const cut of [...cuts, stream.length]) decoder.push(Buffer.from(stream.subarray(at, (at = cut))), out);
      return JSON.stringify(out);
    };
    assert.equal(decode(Array.from({ length: stream.length }, (_, i) => i)), expected);
    for (let first = 0; first <= stream.length; first += 5)
      for (let second = first; second <= stream.length; second += 11)
        assert.equal(decode([first, second]), expected, `cut at ${first} and ${second}`);
  });

  it('refuses a body with bytes left over past its value, from any place in a chunk', () => {
    const good = encodeFrame({ seq: 1 });
    const bad = Buffer.from(good);
    bad.writeUInt32LE(bad.readUInt32LE(4) + 1, 4);
    const stream = Buffer.concat([good, bad, Buffer.from([0xc0])]);
    assert.throws(() => new FrameDecoder().push(stream), { code: 'ProtocolError', message: /malformed frame body/ });
  });

  it('refuses an empty body, alone, before or after a good frame (the next frame is not read into it)', () => {
    const empty = Buffer.from(encodeFrame(null).subarray(0, HEADER_BYTES));
    empty.writeUInt32LE(0, 4);
    const good = encodeFrame({ seq: 1 });
    for (const chunk of [empty, Buffer.concat([empty, good]), Buffer.concat([good, empty])])
      assert.throws(() => new FrameDecoder().push(chunk), { code: 'ProtocolError', message: /malformed frame body/ });
  });

  it('writes the header as little-endian magic, version and a 64-bit body length', () => {
    // Lengths whose four bytes all differ (0x01020304 would be 16 MiB of body: 0x010203 is enough
    // to catch a swapped or shifted byte), and one under 256.
    for (const size of [0x010203, 0x0305, 5]) {
      const frame = encodeFrame(Buffer.alloc(size, 1));
      const length = frame.length - HEADER_BYTES;
      assert.equal(frame.readUInt16LE(0), FRAME_MAGIC);
      assert.equal(frame[2], PROTOCOL_VERSION);
      assert.equal(frame[3], 0);
      assert.equal(frame.readUInt32LE(4), length);
      assert.equal(frame.readUInt32LE(8), 0);
      assert.deepEqual(new FrameDecoder(size + 64).push(frame), [Buffer.alloc(size, 1)]);
    }
  });

  it('keeps binary payloads as bytes', () => {
    const [decoded] = new FrameDecoder().push(encodeFrame({ data: Buffer.from([1, 2, 3]) })) as Array<{
      data: Uint8Array;
    }>;
    assert.deepEqual([...decoded.data], [1, 2, 3]);
  });

  it('rejects a frame over the limit from its header alone', () => {
    const decoder = new FrameDecoder(1024);
    const frame = encodeFrame({ blob: Buffer.alloc(2000) });
    assert.throws(() => decoder.push(frame.subarray(0, HEADER_BYTES)), {
      code: 'ProtocolError',
      message: /exceeds the 1024-byte limit/,
    });
  });

  it('rejects bad magic', () => {
    assert.throws(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), {
      code: 'ProtocolError',
      message: /bad frame magic/,
    });
  });
});

describe('object ids', () => {
  it('are unique, increasing, carry the instance and match the public pattern', () => {
    const ids = new IdGenerator(0x1a2b);
    const made = Array.from({ length: 10000 }, () => ids.next());
    assert.equal(new Set(made).size, made.length);
    assert.deepEqual([...made].sort(), made);
    assert.ok(made.every(isObjectId));
    assert.equal(instanceOf(made[0]), 0x1a2b);
  });

  it('tells ids from everything else as ID_PATTERN does', () => {
    const ids = new IdGenerator(0xffff);
    const samples: unknown[] = [ids.next(), 'o0000000000000000', 'offffffffffffffff', 'o0123456789abcdef'];
    const near = [
      'O0123456789abcdef',
      'o0123456789abcdeF',
      'o0123456789abcdeg',
      'o0123456789abcde',
      'o0123456789abcdef0',
    ];
    // Every character one below and above each range edge, at every position.
    for (let at = 1; at < 17; at++)
      for (const code of [47, 48, 57, 58, 96, 97, 102, 103, 0x660])
        near.push(`o0123456789abcdef`.slice(0, at) + String.fromCharCode(code) + `o0123456789abcdef`.slice(at + 1));
    samples.push(...near, '', 'o', 17, null, undefined, {}, ['o0123456789abcdef'], 'name/o0123456789abcdef');
    for (const sample of samples)
      assert.equal(isObjectId(sample), typeof sample === 'string' && ID_PATTERN.test(sample), String(sample));
  });

  it('refuse instance ids that do not fit', () => {
    assert.throws(() => new IdGenerator(70000), {
      code: 'InvalidArgument',
      message: /instance id 70000 is outside 0..65535/,
    });
  });

  it('detachedId copies an id decoded from a frame (and any other string) unchanged', () => {
    const id = new IdGenerator(7).next();
    const frame = encodeFrame({
      seq: 3,
      reply: { meta: { id, typename: 'trellis::Tensor<float64>' }, blobs: [{ id }] },
    });
    const [decoded] = new FrameDecoder().push(frame) as Array<{ reply: { meta: { id: string } } }>;
    const copy = detachedId(decoded.reply.meta.id);
    assert.equal(copy, id);
    assert.ok(isObjectId(copy));
    for (const other of ['', 'a', 'name/with/slashes', 'o'.repeat(40)]) assert.equal(detachedId(other), other);
  });
});
