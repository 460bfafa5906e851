/**
 * The soak harness itself (bench/soak), run for a few seconds with a few clients and one SIGKILL,
 * so that it cannot rot between the long runs: it must finish, pass every check and say so.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT, TSX_ARGS } from '../fixtures/child';
import { stopProcess } from '../fixtures/processes';
import { onCleanup } from '../fixtures/setup';

const SOAK_SCRIPT = path.join(REPO_ROOT, 'bench', 'soak', 'main.ts');

describe('npm run soak (a short run)', function () {
  // Startup of the daemon and three tsx workers dominates on a loaded machine.
  this.timeout(180_000);

  it('runs 3 clients for 6 s with a SIGKILL and a restart, and every check passes', async () => {
    const args = ['--clients', '3', '--seconds', '6', '--kill-every', '3', '--max-object', '4MiB', '--seed', '7'];
    const child = spawn(process.execPath, [...TSX_ARGS, SOAK_SCRIPT, ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | string>((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
    );
    // SIGTERM first: the soak then stops its daemon and workers itself.
    onCleanup(() => stopProcess(child, exited));

    assert.equal(await exited, 0, output);
    assert.match(output, /^soak: PASS$/m);
    assert.match(output, /, [1-9]\d* clients SIGKILLed and restarted/);
    assert.equal((output.match(/^ {2}\[PASS\]/gm) ?? []).length, 7, output);
    assert.doesNotMatch(output, /\[FAIL\]/);
    // Only the commonest kinds: on a loaded machine a few-second run may make no stream at all.
    for (const kind of ['put', 'get', 'delete']) {
      assert.match(output, new RegExp(`^${kind} +[1-9]`, 'm'), `no ${kind} requests were made:\n${output}`);
    }
  });
});
