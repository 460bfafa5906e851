import * as assert from 'node:assert/strict';
import { connect } from '../../src/index';
import { runChild } from '../fixtures/child';
import { startTestDaemon } from '../fixtures/daemon';
import { settledStatus } from '../fixtures/status';

describe('many client processes at once', function () {
  it('16 processes x 1000 create/seal/get/release/delete cycles: no error, memory back to baseline', async () => {
    const daemon = await startTestDaemon(['--size', '128MiB']);
    const watcher = await connect(daemon.socket);
    const baseline = await watcher.status();
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, seed) =>
        runChild('blob-cycles.ts', [daemon.socket, '1000', String(seed)], 120_000),
      ),
    );
    for (const [seed, result] of results.entries()) assert.equal(result.code, 0, `worker ${seed}: ${result.stderr}`);
    const after = await settledStatus(watcher, (s) => s.clients === 1);
    assert.equal(after.memoryUsage, baseline.memoryUsage);
    assert.equal(after.objects, baseline.objects);
    assert.equal(after.deferredFrees, 0);
    assert.equal(after.clients, 1);
    await watcher.close();
  });
});
