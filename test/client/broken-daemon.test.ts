/**
 * A client whose socket answers with frames that are not replies (a broken daemon, or something
 * else listening at the path), or with a reply or an error for a request it never made: connect fails with
 * ProtocolError, and the client's process goes on. An error with seq 0 is the daemon refusing the
 * connection: connect fails with the daemon's own code.
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { connect } from '../../src/index';
import { encodeFrame } from '../../src/protocol/framing';
import { onCleanup, tempPath } from '../fixtures/setup';

/**
 * Listens at a new socket path and answers the first bytes it gets with `body`, framed; with
 * `end`, then closes the connection, as a daemon that refuses one does.
 */
async function answeringWith(body: unknown, { end = false } = {}): Promise<string> {
  const socketPath = tempPath('broken.sock');
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => (end ? socket.end(encodeFrame(body)) : socket.write(encodeFrame(body))));
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
        assert.match(error.message, new RegExp(`${escaped(socketPath)}.*not a reply`));
        return true;
      });
    });
  }

  it('an error for a request that is not waiting (seq 7): connect rejects with ProtocolError naming the socket', async () => {
    const socketPath = await answeringWith({ seq: 7, error: { code: 'ObjectNotFound', message: 'no such object' } });
    await assert.rejects(withinDeadline(connect(socketPath)), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ProtocolError', error.message);
      assert.match(error.message, new RegExp(`${escaped(socketPath)}.*request 7, which is not waiting`));
      return true;
    });
  });

  it('a reply to a request that is not waiting (seq 7): connect rejects with ProtocolError, not a hang', async () => {
    const socketPath = await answeringWith({ seq: 7, reply: {} });
    await assert.rejects(withinDeadline(connect(socketPath)), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ProtocolError', error.message);
      assert.match(error.message, new RegExp(`${escaped(socketPath)}.*reply to request 7, which is not waiting`));
      return true;
    });
  });

  it("an error with seq 0 is the daemon refusing the connection: connect rejects with the daemon's code", async () => {
    const socketPath = await answeringWith(
      { seq: 0, error: { code: 'PermissionDenied', message: 'uid 1234 may not connect' } },
      { end: true },
    );
    await assert.rejects(withinDeadline(connect(socketPath)), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'PermissionDenied', error.message);
      assert.match(error.message, /uid 1234 may not connect/);
      return true;
    });
  });
});

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `work`, or a rejection after 5 s: a connect left waiting fails the test instead of hanging it. */
function withinDeadline<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('connect neither resolved nor rejected within 5 s')), 5000);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
