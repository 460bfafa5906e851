/**
 * `npx trellisd` runs the daemon as npm -> sh -> node; a signal to npx does not reach node. The
 * daemon must stop cleanly (socket removed) when npx goes, and must not when it was started some
 * other way and its launcher exits on purpose (nohup, a shell that backgrounds it).
 */
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LAUNCHER_POLL_MS } from '../../src/cli/launcher-watch';
import { REPO_ROOT, TSX_ARGS } from '../fixtures/child';
import { DAEMON_SCRIPT } from '../fixtures/daemon';
import { descendantPids, eventually, processEnded } from '../fixtures/processes';
import { onCleanup, tempPath } from '../fixtures/setup';

const READY_DEADLINE_MS = 30_000;
/** How long the daemon may take to notice and shut down: a few polls and a clean stop. */
const STOP_DEADLINE_MS = 10_000;

/** The environment of a plain terminal: none of the npm_* variables `npm test` would pass on. */
function withoutNpm(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('npm_')));
}

/**
 * A project folder with trellis's bin linked as npm links it (node_modules/.bin/trellisd), so
 * `npx trellisd` there runs it as in any project that depends on trellis, without installing
 * anything. The bin runs the TypeScript sources through tsx, so the code under test is what runs.
 */
function projectWithTrellis(): string {
  const project = tempPath('npx-project');
  const bin = path.join(project, 'node_modules', '.bin', 'trellisd');
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  const launcher = [
    `#!${process.execPath}`,
    `require(${JSON.stringify(require.resolve('tsx/cjs'))});`,
    `require(${JSON.stringify(DAEMON_SCRIPT)}).main();`,
  ];
  fs.writeFileSync(bin, launcher.join('\n') + '\n', { mode: 0o755 });
  return project;
}

/** Collects a child's stdout and stderr; resolves once `pattern` appears (rejects on the deadline). */
function watchOutput(child: ChildProcess): { text(): string; wait(pattern: RegExp): Promise<RegExpExecArray> } {
  let output = '';
  const listeners = new Set<() => void>();
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return {
    text: () => output,
    wait: (pattern) =>
      new Promise((resolve, reject) => {
        const late = () => reject(new Error(`no ${pattern} within ${READY_DEADLINE_MS} ms:\n${output}`));
        const timer = setTimeout(late, READY_DEADLINE_MS);
        const check = () => {
          const match = pattern.exec(output);
          if (!match) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(match);
        };
        listeners.add(check);
        check();
      }),
  };
}

/** Kills (SIGKILL) whichever of these processes still run after the test. */
function killAfterTest(pids: () => number[]): void {
  onCleanup(() => {
    for (const pid of pids()) {
      if (processEnded(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone in between.
      }
    }
  });
}

describe('trellisd and the process that launched it', function () {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`started with npx trellisd, it stops cleanly when npx gets ${signal}`, async () => {
      const socket = tempPath('npx.sock');
      const npx = spawn('npx', ['trellisd', '--socket', socket, '--size', '64MiB'], {
        cwd: projectWithTrellis(),
        env: withoutNpm(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let below: number[] = [];
      killAfterTest(() => [npx.pid!, ...below]);
      const output = watchOutput(npx);
      await output.wait(/^trellisd ready socket=(\S+)/m);
      below = descendantPids(npx.pid!);
      assert.ok(below.length >= 1, 'npx runs the daemon below it');
      assert.ok(fs.existsSync(socket));

      npx.kill(signal);
      const stopped = await eventually(() => below.every(processEnded) && !fs.existsSync(socket), STOP_DEADLINE_MS);
      assert.ok(stopped, `the daemon (of ${below.join(', ')}) still runs or left its socket:\n${output.text()}`);
      assert.match(output.text(), /trellisd: process \d+, which launched it, exited: shutting down/);
      assert.doesNotMatch(output.text(), /unclean shutdown/);
    });
  }

  it('started directly (not by npm), it outlives the shell that launched it', async () => {
    const socket = tempPath('direct.sock');
    const command = [process.execPath, ...TSX_ARGS, DAEMON_SCRIPT, '--socket', socket, '--size', '64MiB'];
    const quoted = command.map((word) => `'${word}'`).join(' ');
    const shell = spawn('sh', ['-c', `${quoted} & echo daemon=$!`], {
      cwd: REPO_ROOT,
      env: withoutNpm(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let daemon = 0;
    killAfterTest(() => (daemon > 0 ? [daemon] : []));
    const output = watchOutput(shell);
    daemon = Number((await output.wait(/^daemon=(\d+)$/m))[1]);
    await output.wait(/^trellisd ready socket=/m);
    assert.ok(await eventually(() => shell.exitCode !== null, STOP_DEADLINE_MS), 'the shell exited');
    await new Promise((resolve) => setTimeout(resolve, 4 * LAUNCHER_POLL_MS));
    assert.equal(processEnded(daemon), false, 'the daemon still runs');
    assert.ok(fs.existsSync(socket));

    process.kill(daemon, 'SIGTERM');
    assert.ok(await eventually(() => processEnded(daemon) && !fs.existsSync(socket), STOP_DEADLINE_MS), output.text());
  });
});
