/** client.unref(): an idle client lets its process exit, but a request in flight still keeps it running. */
import * as assert from 'node:assert/strict';
import { startTestDaemon } from '../fixtures/daemon';
import { runToExit } from '../fixtures/exit';

describe('client.unref()', function () {
  it('over the socket and over RPC, the requests finish and then the script exits by itself', async () => {
    const daemon = await startTestDaemon(['--size', '64MiB', '--rpc-port', '0']);
    const expected = { waited: 'NameNotFound', value: { after: 'the wait' }, unsent: 'InvalidArgument' };
    assert.deepEqual(await runToExit('unref-client.ts', [daemon.socket, 'ipc']), expected);
    assert.deepEqual(await runToExit('unref-client.ts', [daemon.rpcEndpoint!, 'rpc']), expected);
  });
});
