import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { connect } from '../../src/index';
import { REPO_ROOT, TSX_ARGS } from '../fixtures/child';
import { DAEMON_SCRIPT, startTestDaemon } from '../fixtures/daemon';
import { tempPath, onCleanup } from '../fixtures/setup';

describe('daemon lifecycle and socket security', function () {
  it('creates its socket with mode 0600 and prints the ready line', async () => {
    const daemon = await startTestDaemon();
    assert.equal(fs.statSync(daemon.socket).mode & 0o777, 0o600);
    assert.match(daemon.output(), /^trellisd ready socket=\S+ instance=0$/m);
  });

  it('--socket-mode widens the socket when asked', async () => {
    const daemon = await startTestDaemon(['--socket-mode', '0660']);
    assert.equal(fs.statSync(daemon.socket).mode & 0o777, 0o660);
  });

  it('refuses a user the socket mode does not admit', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const daemon = await startTestDaemon();
    fs.chmodSync(path.dirname(daemon.socket), 0o755);
    const script = `require('net').connect(${JSON.stringify(daemon.socket)}).on('error', e => { console.log(e.code); process.exit(0) }).on('connect', () => { console.log('connected'); process.exit(0) })`;
    const child = spawn(process.execPath, ['-e', script], {
      uid: 65534,
      gid: 65534,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(out.trim(), 'EACCES');
  });

  it('SIGTERM shuts down cleanly: exit 0 and the socket is gone', async () => {
    const daemon = await startTestDaemon();
    const client = await connect(daemon.socket);
    const writer = await client.createBlob(1024);
    await writer.seal();
    assert.equal(await daemon.stop(), 0);
    assert.equal(fs.existsSync(daemon.socket), false);
    await assert.rejects(client.status(), { code: 'ConnectionClosed' });
  });

  it('replaces a stale socket file from a dead daemon', async () => {
    const daemon = await startTestDaemon();
    daemon.process.kill('SIGKILL');
    await new Promise((resolve) => daemon.process.once('exit', resolve));
    assert.equal(fs.existsSync(daemon.socket), true, 'a killed daemon leaves its socket behind');
    const second = await startTestDaemon(['--socket', daemon.socket]);
    const client = await connect(second.socket);
    assert.equal((await client.status()).objects, 0);
    await client.close();
  });

  it('does not take over a live daemon’s socket, nor a file that is not a socket', async () => {
    const daemon = await startTestDaemon();
    const refused = await runDaemonToExit(['--socket', daemon.socket]);
    assert.equal(refused.code, 1);
    assert.match(refused.output, /\[Conflict\].*another trellisd is already serving/);
    const plainFile = tempPath('not-a-socket');
    fs.writeFileSync(plainFile, 'precious');
    const refusedFile = await runDaemonToExit(['--socket', plainFile]);
    assert.match(refusedFile.output, /exists and is not a socket/);
    assert.equal(fs.readFileSync(plainFile, 'utf8'), 'precious');
  });

  it('refuses a default socket folder that another user made first, or that others can open', async () => {
    const runtime = tempPath('xdg-runtime');
    const folder = `${runtime}/trellis`;
    fs.mkdirSync(folder, { recursive: true, mode: 0o755 });
    fs.chmodSync(folder, 0o755);
    const env = { ...process.env, XDG_RUNTIME_DIR: runtime, TRELLIS_SOCKET: '' };
    const open = await runDaemonToExit(['--size', '64MiB'], env);
    assert.equal(open.code, 1);
    assert.match(
      open.output,
      new RegExp(`\\[PermissionDenied\\].*socket folder ${folder} is open to others; it must be`),
    );
    if (process.getuid?.() === 0) {
      fs.chmodSync(folder, 0o700);
      fs.chownSync(folder, 12345, 12345);
      const foreign = await runDaemonToExit(['--size', '64MiB'], env);
      assert.match(
        foreign.output,
        new RegExp(`socket folder ${folder} belongs to uid 12345; .*remove it, or pass --socket`),
      );
    }
    assert.deepEqual(fs.readdirSync(folder), [], 'no socket was made there');
  });

  it('rejects bad command-line options with a clear message', async () => {
    const result = await runDaemonToExit(['--size', 'lots']);
    assert.equal(result.code, 2);
    assert.match(result.output, /cannot read size "lots"/);
  });

  it('connect to a missing daemon fails with ConnectionClosed naming the path', async () => {
    const missing = tempPath('nobody-here.sock');
    await assert.rejects(connect(missing), (error: Error & { code: string }) => {
      assert.equal(error.code, 'ConnectionClosed');
      assert.ok(error.message.includes(missing));
      return true;
    });
  });

  it('a half-open connection does not block others', async () => {
    const daemon = await startTestDaemon();
    const silent = net.connect(daemon.socket);
    onCleanup(() => silent.destroy());
    const client = await connect(daemon.socket);
    assert.equal((await client.status()).clients, 1);
    await client.close();
  });
});

async function runDaemonToExit(args: string[], env = process.env): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [...TSX_ARGS, DAEMON_SCRIPT, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onCleanup(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, output };
}
