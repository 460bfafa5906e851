/**
 * A fresh process's first getBlob leaves V8's baseline compiler alone. V8 queues a function for
 * its baseline compiler (Sparkplug) once a call or two has run about 1 KB of its bytecode, and
 * compiles the whole queue (~4 KB of functions) at whichever call fills it: when a first getBlob
 * queued anything, the batch that connect() left nearly full was compiled inside it (~0.15 ms and
 * two page faults, session 10). Queueing nothing, the get can never be where a batch compiles,
 * whatever ran before it. Checked on the compiled package (dist/), which users load: tsx's output
 * reaches every import through a getter, which V8 would queue too.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { distStaleness } from '../../bench/lib/dist';
import { startTestDaemon } from '../fixtures/daemon';
import { REPO_ROOT } from '../fixtures/child';
import { onCleanup } from '../fixtures/setup';
import { connect } from '../../src/index';

const CHILD = path.join(REPO_ROOT, 'test', 'fixtures', 'children', 'first-getblob-compile-queue.js');
const TRACE_PREFIX = '[Baseline batch compilation]';

/** The child's stdout, run with V8's trace of the queue; stdbuf keeps V8's printf unbuffered. */
function runTraced(socket: string, id: string): Promise<string> {
  const child = spawn('stdbuf', ['-o0', process.execPath, '--trace-baseline-batch-compilation', CHILD, socket, id], {
    cwd: REPO_ROOT,
    // No code cache: the same bytecode either way, and nothing written to the user's cache.
    env: { ...process.env, TRELLIS_CODE_CACHE: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onCleanup(() => child.kill('SIGKILL'));
  let output = '';
  let errors = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`child exited ${code}: ${errors}`))));
  });
}

describe("a new process's first getBlob and V8's baseline compiler", function () {
  this.timeout(60_000);

  it('queues no function for baseline compilation, so no batch compiles inside it', async function () {
    const stale = distStaleness();
    if (stale) throw new Error(`dist/ is stale (${stale}): run \`npm run build:ts\` first`);
    const daemon = await startTestDaemon(['--size', '64MiB']);
    onCleanup(() => daemon.stop());
    const writer = await connect(daemon.socket);
    onCleanup(() => writer.close());
    const blob = await writer.createBlob(1024);
    blob.buffer.fill(7);
    const id = await blob.seal();

    const output = await runTraced(daemon.socket, id);
    // A V8 without this trace (another Node) prints none of it at all: nothing to check there.
    if (!output.includes(TRACE_PREFIX)) this.skip();
    const lines = output.split('\n');
    const start = lines.indexOf('FIRST-GETBLOB');
    const end = lines.indexOf('FIRST-GETBLOB-DONE');
    assert.ok(start >= 0 && end > start, `markers in order:\n${output}`);
    const stats = JSON.parse(lines[end + 1]) as { views: number };
    assert.equal(stats.views, 1, 'the blob came from the read index, as a view');
    assert.deepEqual(lines.slice(start + 1, end), [], 'V8 queued or compiled nothing during the first getBlob');
  });
});
