import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as os from 'node:os';
import { connect, connectRpc, type TrellisClient } from '../../src/index';
import { encodeFrame, FrameDecoder, HEADER_BYTES } from '../../src/protocol/framing';
import { PROTOCOL_VERSION } from '../../src/protocol/messages';
import { RpcSocket } from '../../src/protocol/rpc-socket';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { expectRejects } from '../fixtures/trellis-errors';

/** Sends raw bytes to host:port and collects decoded frames until the daemon closes the connection. */
async function exchange(
  endpoint: string,
  bytes: Buffer[],
  timeoutMs = 5000,
): Promise<{ frames: unknown[]; closed: boolean }> {
  const [host, port] = endpoint.split(':');
  const socket = net.connect(Number(port), host);
  const decoder = new FrameDecoder(Number.MAX_SAFE_INTEGER);
  const frames: unknown[] = [];
  socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const chunk of bytes) socket.write(chunk);
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on('error', () => undefined);
  });
  socket.destroy();
  return { frames, closed };
}

function header(length: number): Buffer {
  const head = Buffer.alloc(HEADER_BYTES);
  head.writeUInt16LE(0x5254, 0);
  head.writeUInt8(PROTOCOL_VERSION, 2);
  head.writeUInt32LE(length % 2 ** 32, 4);
  head.writeUInt32LE(Math.floor(length / 2 ** 32), 8);
  return head;
}

describe('the RPC port', function () {
  describe('binding and tokens', function () {
    it('binds to 127.0.0.1 unless told otherwise', async () => {
      const daemon = await startTestDaemon(['--rpc-port', '0']);
      assert.match(daemon.rpcEndpoint!, /^127\.0\.0\.1:\d+$/);
      const external = Object.values(os.networkInterfaces())
        .flat()
        .find((address) => address && address.family === 'IPv4' && !address.internal);
      if (external) {
        const port = daemon.rpcEndpoint!.split(':')[1];
        await expectRejects(
          connectRpc(`${external.address}:${port}`, { connectTimeoutMs: 2000 }),
          'Unavailable',
          /cannot connect|did not accept/,
        );
      }
      const client = await connectRpc(daemon.rpcEndpoint!);
      assert.equal((await client.status()).instanceId, daemon.instanceId);
      await client.close();
    });

    it('with --rpc-token, refuses connections without the token or with a wrong one', async () => {
      const daemon = await startTestDaemon(['--rpc-port', '0', '--rpc-token', 's3cret-token']);
      await expectRejects(connectRpc(daemon.rpcEndpoint!), 'PermissionDenied', /requires a token/);
      await expectRejects(
        connectRpc(daemon.rpcEndpoint!, { token: 's3cret-tokeN' }),
        'PermissionDenied',
        /wrong token/,
      );
      await expectRejects(connectRpc(daemon.rpcEndpoint!, { token: '' }), 'PermissionDenied', /wrong token/);
      const client = await connectRpc(daemon.rpcEndpoint!, { token: 's3cret-token' });
      const id = await client.put({ secret: true });
      assert.deepEqual(await client.get(id), { secret: true });
      await client.close();
    });

    it('a port nobody serves is Unavailable, naming the endpoint, with the system error as cause', async () => {
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as net.AddressInfo;
      await new Promise((resolve) => server.close(resolve));
      const error = await expectRejects(
        connectRpc(`127.0.0.1:${port}`),
        'Unavailable',
        new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED`),
      );
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
      await expectRejects(connectRpc('no-port-here'), 'InvalidArgument', /host:port/);
    });

    it('a daemon that accepts but never answers the handshake is Unavailable within the deadline', async () => {
      const silent = net.createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const { port } = silent.address() as net.AddressInfo;
      const started = Date.now();
      await expectRejects(
        connectRpc(`127.0.0.1:${port}`, { connectTimeoutMs: 300 }),
        'Unavailable',
        /did not answer registerRpc within 300 ms/,
      );
      assert.ok(Date.now() - started < 3000);
      silent.close();
    });
  });

  describe('bad input', function () {
    let daemon: TestDaemon;
    let local: TrellisClient;
    before(async () => {
      daemon = await startTestDaemon(['--rpc-port', '0']);
      local = await connect(daemon.socket);
    });
    after(async () => {
      await local?.close();
      await daemon?.stop();
    });

    it('garbage gets a ProtocolError and closes that connection only', async () => {
      const bystander = await connectRpc(daemon.rpcEndpoint!);
      const { frames, closed } = await exchange(daemon.rpcEndpoint!, [
        Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      ]);
      assert.ok(closed, 'the daemon closed the connection');
      const [reply] = frames as Array<{ error: { code: string; message: string } }>;
      assert.equal(reply.error.code, 'ProtocolError');
      assert.match(reply.error.message, /bad frame magic/);
      assert.deepEqual(await bystander.get(await bystander.put([1, 2, 3])), [1, 2, 3]);
      assert.equal((await local.status()).instanceId, daemon.instanceId);
      await bystander.close();
    });

    it('refuses an oversize frame from its header, before any body arrives', async () => {
      const { frames, closed } = await exchange(daemon.rpcEndpoint!, [header(2 ** 40)]);
      assert.ok(closed);
      const [reply] = frames as Array<{ error: { code: string; message: string } }>;
      assert.equal(reply.error.code, 'ProtocolError');
      assert.match(reply.error.message, /frame of 1099511627776 bytes exceeds the \d+-byte limit/);
    });

    it('a malformed body, or a request before the handshake, is a ProtocolError', async () => {
      const body = Buffer.from([0xc1, 0xc1, 0xc1]);
      const malformed = await exchange(daemon.rpcEndpoint!, [header(body.length), body]);
      assert.ok(malformed.closed);
      assert.equal((malformed.frames[0] as { error: { code: string } }).error.code, 'ProtocolError');
      const early = await exchange(daemon.rpcEndpoint!, [encodeFrame({ kind: 'status', seq: 1, body: {} })]);
      assert.ok(early.closed);
      const [reply] = early.frames as Array<{ seq: number; error: { code: string; message: string } }>;
      assert.equal(reply.error.code, 'ProtocolError');
      assert.match(reply.error.message, /first request on the RPC port must be registerRpc, got "status"/);
      const version = await exchange(daemon.rpcEndpoint!, [
        encodeFrame({ kind: 'registerRpc', seq: 1, body: { protocolVersion: 99 } }),
      ]);
      assert.match(
        (version.frames[0] as { error: { message: string } }).error.message,
        /client speaks protocol number 99, this daemon 1/,
      );
    });

    it('an unknown kind gets an error and the connection stays up', async () => {
      const socket = await RpcSocket.connect(daemon.rpcEndpoint!);
      await expectRejects(
        socket.request('nonsense' as 'status', {}),
        'ProtocolError',
        /unknown request kind "nonsense" on the RPC port/,
      );
      await expectRejects(
        socket.request('register' as 'status', {}),
        'ProtocolError',
        /unknown request kind "register"/,
      );
      assert.equal((await socket.request('status', {})).instanceId, daemon.instanceId);
      socket.close();
    });

    it('readBlobs and writeBlob touch only what the session may: held blobs, its own unsealed ones, in bounds', async () => {
      const socket = await RpcSocket.connect(daemon.rpcEndpoint!);
      const other = await local.put(Buffer.from('not yours yet'));
      const sink = () => undefined;
      await expectRejects(
        socket.readBlobs([{ id: other, size: 13 }], sink),
        'PermissionDenied',
        new RegExp(`cannot read ${other}: take it with getBlobs`),
      );
      await expectRejects(
        socket.readBlobs([{ id: 'o00000000000000ff', size: 1 }], sink),
        'ObjectNotFound',
        /no such blob/,
      );
      await socket.request('getBlobs', { ids: [other] });
      const pieces: string[] = [];
      await socket.readBlobs([{ id: other, size: 13 }], (_id, _offset, bytes) => pieces.push(bytes.toString()));
      assert.equal(pieces.join(''), 'not yours yet');
      await expectRejects(
        socket.request('readBlobs', { ranges: [{ id: other, offset: 10, length: 4 }] }),
        'InvalidArgument',
        /bytes \[10, 14\) are outside blob .* of 13 bytes/,
      );

      await expectRejects(
        socket.writeBlob(other, 0, Buffer.from('x')),
        'AlreadySealed',
        /cannot write .*already sealed/,
      );
      const [mine] = (await socket.request('createBlobs', { sizes: [4] })).blobs;
      await expectRejects(
        socket.writeBlob(mine.id, 2, Buffer.from('xyz')),
        'InvalidArgument',
        /bytes \[2, 5\) are outside blob/,
      );
      const [theirs] = await local.createBlobs([4]);
      await expectRejects(
        socket.writeBlob(theirs.id, 0, Buffer.from('x')),
        'PermissionDenied',
        /another client created it/,
      );
      await theirs.abort();
      await socket.writeBlob(mine.id, 0, Buffer.from('abcd'));
      await socket.request('seal', { id: mine.id });
      assert.equal((await local.getBlob(mine.id)).buffer.toString(), 'abcd');
      socket.close();
    });

    it('the UNIX socket does not serve the byte kinds: local bytes never cross a socket', async () => {
      const id = await local.put(Buffer.from('local'));
      const raw = net.connect(daemon.socket);
      const decoder = new FrameDecoder(Number.MAX_SAFE_INTEGER);
      const replies: Array<{ seq: number; error?: { code: string; message: string } }> = [];
      raw.on('data', (chunk: Buffer) => replies.push(...(decoder.push(chunk) as typeof replies)));
      await new Promise((resolve) => raw.once('connect', resolve));
      raw.write(
        encodeFrame({ kind: 'register', seq: 1, body: { protocolVersion: PROTOCOL_VERSION, pid: process.pid } }),
      );
      raw.write(encodeFrame({ kind: 'readBlobs', seq: 2, body: { ranges: [{ id, offset: 0, length: 5 }] } }));
      const deadline = Date.now() + 5000;
      while (replies.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      raw.destroy();
      assert.equal(replies[1].error?.code, 'ProtocolError');
      assert.match(replies[1].error!.message, /unknown request kind "readBlobs"/);
    });
  });
});
