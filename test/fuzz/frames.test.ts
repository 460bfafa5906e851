/**
 * The two frame readers (framing.ts's FrameDecoder, used by the daemon's connections, and
 * frame-reader.ts's FrameReader, used at the RPC port): arbitrary bytes give decoded bodies or a
 * ProtocolError, never another error; valid frames split at arbitrary points decode as they were.
 */
import * as assert from 'node:assert/strict';
import * as fc from 'fast-check';
import { FrameReader } from '../../src/protocol/frame-reader';
import { encodeFrame, FrameDecoder, FRAME_MAGIC, HEADER_BYTES } from '../../src/protocol/framing';
import type { WireError } from '../../src/errors';
import type { GetObjectReply } from '../../src/protocol/messages';
import { answers, fromColumns, toColumns } from '../../src/protocol/plain-blob-columns';
import { check, onlyTyped, runs } from './properties';

const MAX_FRAME = 1024 * 1024;

/** Plain msgpack-able bodies, as requests are. */
const body = fc.dictionary(
  fc.string({ maxLength: 8 }),
  fc.oneof(
    fc.string(),
    fc.integer(),
    // msgpack writes -0 as the integer 0 (found by a 10-minute run): a property of msgpack, not of framing.
    fc.double({ noNaN: true }).map((d) => (Object.is(d, -0) ? 0 : d)),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  ),
  { maxKeys: 6, noNullPrototype: true },
);

/** Splits bytes into chunks at the given cut points. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let at = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(at, point));
    at = point;
  }
  chunks.push(bytes.subarray(at));
  return chunks;
}

/** Arbitrary bytes, sometimes behind a valid header so that the body parser gets them too. */
const hostileBytes = fc.oneof(
  fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)),
  fc.uint8Array({ maxLength: 256 }).map((b) => {
    const head = Buffer.alloc(HEADER_BYTES);
    head.writeUInt16LE(FRAME_MAGIC, 0);
    head[2] = encodeFrame({})[2];
    head.writeUInt32LE(b.length, 4);
    return Buffer.concat([head, b]);
  }),
);

function readerOf(bodies: unknown[]): FrameReader {
  return new FrameReader(MAX_FRAME, {
    body: (decoded) => bodies.push(decoded),
    bulkStart: () => undefined,
    bulkEnd: () => undefined,
  });
}

describe('fuzz: frame readers', () => {
  it('FrameDecoder: arbitrary bytes in arbitrary chunks give bodies or a ProtocolError', () => {
    check(
      fc.property(hostileBytes, fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
        const decoder = new FrameDecoder(MAX_FRAME);
        onlyTyped(() => split(bytes, cuts).forEach((chunk) => decoder.push(chunk)), ['ProtocolError']);
      }),
      runs(2000),
    );
  });

  it('FrameReader: arbitrary bytes in arbitrary chunks give bodies or a ProtocolError', () => {
    check(
      fc.property(hostileBytes, fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
        const reader = readerOf([]);
        onlyTyped(() => split(bytes, cuts).forEach((chunk) => reader.push(chunk)), ['ProtocolError']);
      }),
      runs(2000),
    );
  });

  it('valid frames split at arbitrary points decode to the same bodies, in order, in both readers', () => {
    check(
      fc.property(
        fc.array(body, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (bodies, cuts) => {
          const stream = Buffer.concat(bodies.map((b) => Buffer.from(encodeFrame(b))));
          const chunks = split(stream, cuts);
          const decoder = new FrameDecoder(MAX_FRAME);
          assert.deepEqual(
            chunks.flatMap((chunk) => decoder.push(chunk)),
            bodies,
          );
          const read: unknown[] = [];
          const reader = readerOf(read);
          // FrameReader may keep a chunk's bytes only by copying: hand it a buffer that is then overwritten.
          for (const chunk of chunks) {
            const reused = Buffer.from(chunk);
            reader.push(reused);
            reused.fill(0xee);
          }
          assert.deepEqual(read, bodies);
        },
      ),
      runs(500),
    );
  });

  it('getObjects columns: any mix of replies and errors goes through a frame and comes back as it was', () => {
    const id = fc.stringMatching(/^o[0-9a-f]{16}$/);
    const record = fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), {
      maxKeys: 2,
      noNullPrototype: true,
    });
    // Spread into plain objects: fast-check may give records a null prototype, msgpack does not.
    const location = fc.record({ id, size: fc.nat(), segment: fc.nat(9), offset: fc.nat() }).map((l) => ({ ...l }));
    const reply = fc
      .record({
        id,
        typename: fc.constantFrom('trellis::Blob', 'trellis::Value', 'x'),
        nbytes: fc.nat(),
        instanceId: fc.nat(2),
        createdAt: fc.nat(),
        labels: record,
        fields: record,
        blobs: fc.array(location, { maxLength: 2 }),
        own: fc.boolean(),
      })
      .map(({ blobs, own, ...meta }): GetObjectReply => {
        // Half of them plain blobs: one blob that is the object itself, of its size.
        const located = own ? [{ id: meta.id, size: meta.nbytes, segment: 1, offset: 64 }] : blobs;
        return { meta: { ...meta, members: {} }, blobs: located };
      });
    const answer = fc.oneof(
      reply,
      fc
        .record({ code: fc.constantFrom('ObjectNotFound', 'NameNotFound'), message: fc.string({ maxLength: 8 }) })
        .map((error) => ({ ...error })),
    );
    check(
      fc.property(fc.array(answer, { maxLength: 20 }), fc.nat(2), (given, instanceId) => {
        const found = given.filter((a): a is GetObjectReply => 'meta' in a);
        const at = given.flatMap((a, i) => ('meta' in a ? [i] : []));
        const columns = toColumns(found, instanceId, at);
        const failed = given.flatMap((a, i) => ('meta' in a ? [] : [i]));
        const errors = { at: failed, errors: failed.map((i) => given[i] as WireError) };
        const sent = failed.length > 0 ? { ...columns, errors } : columns;
        const decoder = new FrameDecoder(MAX_FRAME);
        const [received] = decoder.push(encodeFrame(sent)) as [typeof sent];
        assert.deepEqual(answers(received), given);
        if (failed.length === 0) assert.deepEqual(fromColumns(toColumns(given as GetObjectReply[], instanceId)), given);
      }),
      runs(500),
    );
  });
});
