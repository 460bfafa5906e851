import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { connect } from '../../src/index';
import { encodeFrame, FrameDecoder, FRAME_MAGIC, HEADER_BYTES } from '../../src/protocol/framing';
import { PROTOCOL_VERSION } from '../../src/protocol/messages';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { onCleanup } from '../fixtures/setup';

interface RawReply {
  seq: number;
  error?: { code: string; message: string };
  reply?: Record<string, unknown>;
}

/** A raw socket that records every reply frame and whether the daemon closed it. */
async function rawSocket(daemon: TestDaemon) {
  const socket = net.connect(daemon.socket);
  onCleanup(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  const decoder = new FrameDecoder();
  const replies: RawReply[] = [];
  socket.on('data', (chunk) => replies.push(...(decoder.push(chunk) as RawReply[])));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  const nextReply = async (): Promise<RawReply> => {
    const deadline = Date.now() + 5000;
    while (replies.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(replies.length > 0, 'expected a reply');
    return replies.shift()!;
  };
  return { socket, closed, nextReply };
}

function header(length: bigint, version = PROTOCOL_VERSION, magic = FRAME_MAGIC): Buffer {
  const head = Buffer.alloc(HEADER_BYTES);
  head.writeUInt16LE(magic, 0);
  head.writeUInt8(version, 2);
  head.writeBigUInt64LE(length, 4);
  return head;
}

describe('bad input on the socket', function () {
  let daemon: TestDaemon;
  before(async () => {
    daemon = await startTestDaemon();
  });
  after(() => daemon.stop());

  afterEach(async () => {
    // Whatever the last test sent, the daemon still serves a new client.
    const client = await connect(daemon.socket);
    const writer = await client.createBlob(16);
    assert.match(await writer.seal(), /^o[0-9a-f]{16}$/);
    await client.close();
  });

  it('random bytes: ProtocolError, then the connection is closed', async () => {
    const raw = await rawSocket(daemon);
    raw.socket.write(randomBytes(4096));
    const reply = await raw.nextReply();
    assert.equal(reply.error?.code, 'ProtocolError');
    assert.match(reply.error!.message, /bad frame magic/);
    await raw.closed;
  });

  it('a length of 2^40 is refused before anything is allocated', async () => {
    const raw = await rawSocket(daemon);
    raw.socket.write(header(2n ** 40n));
    const reply = await raw.nextReply();
    assert.equal(reply.error?.code, 'ProtocolError');
    assert.match(reply.error!.message, /frame of 1099511627776 bytes exceeds the 67108864-byte limit/);
    await raw.closed;
  });

  it('an unknown protocol version is refused', async () => {
    const raw = await rawSocket(daemon);
    raw.socket.write(header(4n, 99));
    const reply = await raw.nextReply();
    assert.match(reply.error!.message, /unsupported protocol version 99/);
    await raw.closed;
  });

  it('a body that is not msgpack is refused', async () => {
    const raw = await rawSocket(daemon);
    raw.socket.write(Buffer.concat([header(1n), Buffer.from([0x92])])); // an array of 2 with no items
    const reply = await raw.nextReply();
    assert.equal(reply.error?.code, 'ProtocolError');
    assert.match(reply.error!.message, /malformed frame body/);
    await raw.closed;
  });

  it('a request before the handshake is refused', async () => {
    const raw = await rawSocket(daemon);
    raw.socket.write(encodeFrame({ kind: 'status', seq: 1, body: {} }));
    const reply = await raw.nextReply();
    assert.equal(reply.error?.code, 'ProtocolError');
    assert.match(reply.error!.message, /the first request must be register, got "status"/);
    await raw.closed;
  });

  it('an unknown command gets a ProtocolError and the connection keeps working', async () => {
    const raw = await rawSocket(daemon);
    raw.socket.write(
      encodeFrame({ kind: 'register', seq: 1, body: { protocolVersion: PROTOCOL_VERSION, pid: process.pid } }),
    );
    assert.ok((await raw.nextReply()).reply?.clientId);
    raw.socket.write(encodeFrame({ kind: 'launchMissiles', seq: 2, body: {} }));
    const unknown = await raw.nextReply();
    assert.equal(unknown.seq, 2);
    assert.equal(unknown.error?.code, 'ProtocolError');
    assert.match(unknown.error!.message, /unknown request kind "launchMissiles"/);
    raw.socket.write(encodeFrame({ kind: 'status', seq: 3, body: {} }));
    assert.equal((await raw.nextReply()).reply?.memoryLimit, 256 * 1024 * 1024);
  });

  it('wrong argument types get InvalidArgument naming the field', async () => {
    const raw = await rawSocket(daemon);
    raw.socket.write(encodeFrame({ kind: 'register', seq: 1, body: { protocolVersion: PROTOCOL_VERSION, pid: 1 } }));
    await raw.nextReply();
    const cases: Array<[string, unknown, RegExp]> = [
      ['createBlobs', { sizes: [-1] }, /blob size must be a non-negative integer, got number -1/],
      ['createBlobs', { sizes: 'big' }, /sizes must be a list of 1 to 100000 sizes, got "big"/],
      ['getBlobs', { ids: 'o0000000000000001' }, /ids must be a list/],
      ['getBlobs', { ids: ['../etc/passwd'] }, /"..\/etc\/passwd" is not an object id/],
      ['seal', { id: 5 }, /id must be an object id/],
      ['createBlobs', 'not a map', /the request body must be a map/],
      ['createBlobs', { sizes: [1], typename: 'no spaces allowed' }, /is not a typename/],
      [
        'writeChunk',
        { id: 'o0000000000000001', chunk: 'o0000000000000002', more: 'lots' },
        /writeChunk: more must be a list of at most 100000 chunks, got "lots"/,
      ],
      [
        'writeChunk',
        { id: 'o0000000000000001', chunk: 'o0000000000000002', more: [{ chunk: 7 }] },
        /chunk must be an object id/,
      ],
    ];
    let seq = 2;
    for (const [kind, body, message] of cases) {
      raw.socket.write(encodeFrame({ kind, seq: seq++, body }));
      const reply = await raw.nextReply();
      assert.equal(reply.error?.code, 'InvalidArgument', `${kind} ${JSON.stringify(body)}`);
      assert.match(reply.error!.message, message);
    }
  });

  it('unknown ids get ObjectNotFound and change nothing', async () => {
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const before = await client.status();
    const real = await client.createBlob(8);
    const realId = await real.seal();
    const missing = 'o00000000deadbeef';
    await assert.rejects(client.getBlob(missing), {
      code: 'ObjectNotFound',
      message: `object ${missing} does not exist`,
    });
    await assert.rejects(client.delete([realId, missing]), { code: 'ObjectNotFound' });
    assert.equal(await client.exists(realId), true, 'all or nothing: the real id survived');
    await assert.rejects(client.getBlob('nonsense'), {
      code: 'InvalidArgument',
      message: /"nonsense" is not an object id/,
    });
    await client.delete(realId);
    assert.equal((await client.status()).memoryUsage, before.memoryUsage);
  });
});
