/**
 * A client whose socket answers with frames that are not replies (a broken daemon, or something
 * else listening at the path): connect fails with ProtocolError, and the client's process goes on.
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { connect } from '../../src/index';
import { encodeFrame } from '../../src/protocol/framing';
import { onCleanup, tempPath } from '../fixtures/setup';

/** Listens at a new socket path and answers the first bytes it gets with `body`, framed. */
async function answeringWith(body: unknown): Promise<string> {
  const socketPath = tempPath('broken.sock');
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.write(encodeFrame(body)));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return socketPath;
}

describe('a socket that answers with frames that are not replies', function () {
  this.timeout(10_000);

  for (const [what, body] of [
    ['null', null],
    ['a number', 7],
    ['a string', 'hello'],
    ['an object without a seq', { reply: {} }],
    ['an object whose seq is a string', { seq: '1', reply: {} }],
  ] as const) {
    it(`${what}: connect rejects with ProtocolError naming the socket`, async () => {
      const socketPath = await answeringWith(body);
      await assert.rejects(connect(socketPath), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ProtocolError', error.message);
        assert.match(error.message, new RegExp(`${socketPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*not a reply`));
        return true;
      });
    });
  }
});
