/**
 * The soak harness itself (bench/soak), run for a few seconds with a few clients and one SIGKILL
 * of a client, then of the daemon, so that it cannot rot between the long runs: it must finish,
 * pass every check and say so.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT, TSX_ARGS } from '../fixtures/child';
import { stopProcess } from '../fixtures/processes';
import { onCleanup } from '../fixtures/setup';

const SOAK_SCRIPT = path.join(REPO_ROOT, 'bench', 'soak', 'main.ts');

describe('npm run soak (a short run)', function () {
  // Startup of the daemon and the tsx workers (again after a daemon restart) dominates on a loaded machine.
  this.timeout(240_000);

  it('runs 3 clients for 6 s with a SIGKILL and a restart, and every check passes', async () => {
    const { code, output } = await runSoak(['--clients', '3', '--seconds', '6', '--kill-every', '3']);
    assert.equal(code, 0, output);
    assert.match(output, /^soak: PASS$/m);
    assert.match(output, /, [1-9]\d* clients SIGKILLed and restarted/);
    assert.equal((output.match(/^ {2}\[PASS\]/gm) ?? []).length, 7, output);
    assert.doesNotMatch(output, /\[FAIL\]/);
    // Only the commonest kinds: on a loaded machine a few-second run may make no stream at all.
    for (const kind of ['put', 'get', 'delete']) {
      assert.match(output, new RegExp(`^${kind} +[1-9]`, 'm'), `no ${kind} requests were made:\n${output}`);
    }
  });

  it('SIGKILLs the daemon mid-run and restarts it on its data dir: named objects survive, every check passes', async () => {
    const args = ['--clients', '2', '--seconds', '6', '--kill-every', '0', '--restart-daemon-every', '3'];
    const { code, output } = await runSoak(args);
    assert.equal(code, 0, output);
    assert.match(output, /^soak: PASS$/m);
    assert.match(output, /the daemon SIGKILLed and restarted [1-9]\d* times/);
    assert.match(output, /^ {2}\[PASS\] named objects survive every daemon SIGKILL and restart/m);
    assert.equal((output.match(/^ {2}\[PASS\]/gm) ?? []).length, 8, output);
  });
});

/** Runs the soak with `args` (and small objects, a fixed seed) to its end; its exit code and output. */
async function runSoak(args: string[]): Promise<{ code: number | string; output: string }> {
  const child = spawn(process.execPath, [...TSX_ARGS, SOAK_SCRIPT, ...args, '--max-object', '4MiB', '--seed', '7'], {
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
  return { code: await exited, output };
}
