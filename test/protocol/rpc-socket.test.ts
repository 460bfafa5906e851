/**
 * The RPC client's reply matching and deadlines, against a TCP server that answers the handshake
 * and then as each test scripts it: a reply for a request never made fails the connection with
 * ProtocolError (an error with seq 0 is the daemon refusing it); a request that misses its
 * deadline closes the connection with Unavailable, and its late reply is never read; each request
 * keeps its own deadline, and one answered in time never times out.
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { encodeFrame, FrameDecoder } from '../../src/protocol/framing';
import { RpcSocket, type RpcSocketOptions } from '../../src/protocol/rpc-socket';
import { onCleanup } from '../fixtures/setup';

interface Frame {
  kind: string;
  seq: number;
  body: { ref?: string };
}

type Answer = (frame: Frame, send: (reply: unknown) => void) => void;

/** Listens on loopback; answers registerRpc, hands every other frame to `answer`. */
async function scriptedDaemon(answer: Answer): Promise<string> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    const decoder = new FrameDecoder(1 << 20);
    const send = (reply: unknown) => {
      if (!socket.destroyed) socket.write(encodeFrame(reply));
    };
    socket.on('data', (chunk) => {
      for (const frame of decoder.push(chunk) as Frame[]) {
        if (frame.kind === 'registerRpc')
          send({ seq: frame.seq, reply: { clientId: 1, instanceId: 1, maxFrameBytes: 1 << 20 } });
        else answer(frame, send);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

async function connected(endpoint: string, options: RpcSocketOptions = {}): Promise<RpcSocket> {
  const rpc = await RpcSocket.connect(endpoint, options);
  onCleanup(() => rpc.close());
  return rpc;
}

function expectCode(code: string, pattern: RegExp): (error: Error & { code?: string }) => boolean {
  return (error) => {
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  };
}

/** `work`, or a rejection after 5 s: a request left waiting fails the test instead of hanging it. */
function withinDeadline<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('neither resolved nor rejected within 5 s')), 5000);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('RpcSocket: replies matched by seq, and deadlines', function () {
  this.timeout(15_000);

  it('an error for a request never made fails the connection with ProtocolError naming the endpoint', async () => {
    const endpoint = await scriptedDaemon((frame, send) => {
      if (frame.body.ref === 'first') send({ seq: 999, error: { code: 'ObjectNotFound', message: 'no such object' } });
    });
    const rpc = await connected(endpoint, { requestTimeoutMs: 0 });
    const waiting = rpc.request('getMeta', { ref: 'waits' });
    const first = rpc.request('getMeta', { ref: 'first' });
    const failed = expectCode('ProtocolError', new RegExp(`${escaped(endpoint)}.*request 999, which is not waiting`));
    await assert.rejects(withinDeadline(first), failed);
    await assert.rejects(withinDeadline(waiting), failed);
    assert.ok(rpc.closed);
  });

  it('a reply to a request never made fails the connection with ProtocolError, not a hang', async () => {
    const endpoint = await scriptedDaemon((frame, send) => send({ seq: frame.seq + 100, reply: { meta: {} } }));
    const rpc = await connected(endpoint, { requestTimeoutMs: 0 });
    await assert.rejects(
      withinDeadline(rpc.request('getMeta', { ref: 'x' })),
      expectCode('ProtocolError', new RegExp(`${escaped(endpoint)}.*reply to request \\d+, which is not waiting`)),
    );
  });

  it("an error with seq 0 is the daemon refusing the connection: requests fail with the daemon's code", async () => {
    const endpoint = await scriptedDaemon((_, send) =>
      send({ seq: 0, error: { code: 'PermissionDenied', message: 'go' } }),
    );
    const rpc = await connected(endpoint, { requestTimeoutMs: 0 });
    await assert.rejects(withinDeadline(rpc.request('getMeta', { ref: 'x' })), expectCode('PermissionDenied', /go/));
  });

  it('a request that misses its deadline closes the connection; its late reply is not read', async () => {
    const lateReplies: Array<() => void> = [];
    const endpoint = await scriptedDaemon((frame, send) => {
      // 'slow' is answered after its deadline, with an error; 'patient' (no deadline) never.
      if (frame.body.ref === 'slow') {
        const timer = setTimeout(
          () => send({ seq: frame.seq, error: { code: 'ObjectNotFound', message: 'late' } }),
          600,
        );
        lateReplies.push(() => clearTimeout(timer));
      }
    });
    onCleanup(() => lateReplies.forEach((cancel) => cancel()));
    const rpc = await connected(endpoint);
    const started = Date.now();
    const patient = rpc.request('getMeta', { ref: 'patient' }, { timeoutMs: 0 });
    const slow = rpc.request('getMeta', { ref: 'slow' }, { timeoutMs: 150 });
    const timedOut = expectCode('Unavailable', new RegExp(`${escaped(endpoint)} did not answer getMeta within 150 ms`));
    await assert.rejects(withinDeadline(slow), timedOut);
    assert.ok(Date.now() - started >= 140, `timed out after ${Date.now() - started} ms`);
    await assert.rejects(withinDeadline(patient), timedOut);
    assert.ok(rpc.closed);
    await new Promise((resolve) => setTimeout(resolve, 700));
    await assert.rejects(rpc.request('getMeta', { ref: 'after' }), timedOut);
  });

  it('each request keeps its own deadline: a short one after a long one fires first', async () => {
    const endpoint = await scriptedDaemon(() => undefined);
    const rpc = await connected(endpoint);
    const started = Date.now();
    const long = rpc.request('getMeta', { ref: 'long' }, { timeoutMs: 10_000 });
    const short = rpc.request('listNames', {} as never, { timeoutMs: 200 });
    const timedOut = expectCode('Unavailable', /did not answer listNames within 200 ms/);
    await assert.rejects(withinDeadline(short), timedOut);
    await assert.rejects(withinDeadline(long), timedOut);
    assert.ok(Date.now() - started < 5000);
  });

  it('requests answered in time never time out, however long the connection then stays idle', async () => {
    const endpoint = await scriptedDaemon((frame, send) =>
      send({ seq: frame.seq, reply: { meta: { id: frame.body.ref } } }),
    );
    const rpc = await connected(endpoint, { requestTimeoutMs: 150 });
    for (let round = 0; round < 3; round++) {
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) => rpc.request('getMeta', { ref: `r${round}-${i}` })),
      );
      assert.deepEqual(
        replies.map((reply) => (reply.meta as unknown as { id: string }).id),
        Array.from({ length: 20 }, (_, i) => `r${round}-${i}`),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(rpc.closed, false, `closed after round ${round}`);
    }
  });
});
