/**
 * trellis as a dependency of someone else's project: pack the repository as `npm publish` would,
 * install the tarball into a fresh project (its dependencies come from the npm cache that this
 * project's own install filled), and use it there with plain Node through the installed bin and
 * the compiled dist/, with the prebuilt addon: nothing is compiled on the user's side.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../fixtures/child';
import { onCleanup } from '../fixtures/setup';

const PACK_DEADLINE_MS = 90_000;
const INSTALL_DEADLINE_MS = 60_000;
const APP_DEADLINE_MS = 30_000;
const CONSUMER_APP = path.join(REPO_ROOT, 'test', 'fixtures', 'consumer-app.js');
/** npm's codes for a registry it cannot reach (the only reason to skip rather than fail). */
const OFFLINE = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH)\b/;

interface Finished {
  code: number | string;
  output: string;
}

/**
 * Runs a command in its own process group, without the npm_* variables an enclosing `npm test`
 * sets (npm would take npm_config_call or npm_config_local_prefix as its own settings) and without
 * TRELLIS_* (TRELLIS_ADDON would point the installed package at this clone's build). On the
 * deadline or a failed test, the whole group (npm and the builds it started) is killed.
 */
function run(
  command: string,
  args: string[],
  cwd: string,
  deadlineMs: number,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<Finished> {
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(npm_|TRELLIS_)/.test(key))),
    ...extraEnv,
  };
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const forget = onCleanup(killGroup);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(killGroup, deadlineMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      forget();
      const timedOut = signal === 'SIGKILL' ? ` (killed after ${deadlineMs} ms)` : '';
      resolve({ code: code ?? `${signal}${timedOut}`, output });
    });
  });
}

/**
 * Installs from the npm cache alone, which this project's own install filled; only when the cache
 * lacks something (ENOTCACHED) does it ask the registry, with short timeouts and one retry.
 */
async function installTarball(tarball: string, app: string): Promise<Finished> {
  const install = ['install', '--no-audit', '--no-fund', tarball];
  const offline = await run('npm', [...install, '--offline'], app, INSTALL_DEADLINE_MS);
  if (offline.code === 0 || !/\bENOTCACHED\b/.test(offline.output)) return offline;
  const online = [
    '--prefer-offline',
    '--fetch-timeout=15000',
    '--fetch-retries=1',
    '--fetch-retry-mintimeout=1000',
    '--fetch-retry-maxtimeout=3000',
  ];
  return run('npm', [...install, ...online], app, INSTALL_DEADLINE_MS);
}

function mustSucceed(step: string, finished: Finished): void {
  assert.equal(finished.code, 0, `${step} failed (${finished.code}):\n${finished.output}`);
}

describe('the packed package installed into another project', function () {
  this.timeout(PACK_DEADLINE_MS + 2 * INSTALL_DEADLINE_MS + APP_DEADLINE_MS);

  it('installs from the tarball without building, and its bin and API work from plain Node', async function () {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-packaging-'));
    onCleanup(() => fs.rmSync(work, { recursive: true, force: true }));

    mustSucceed('npm pack', await run('npm', ['pack', '--pack-destination', work], REPO_ROOT, PACK_DEADLINE_MS));
    const tarballs = fs.readdirSync(work).filter((name) => name.endsWith('.tgz'));
    assert.equal(tarballs.length, 1, `npm pack made ${tarballs.join(', ') || 'no tarball'}`);

    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    const manifest = { name: 'consumer', version: '1.0.0', private: true };
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify(manifest));
    const installed = await installTarball(path.join(work, tarballs[0]), app);
    if (installed.code !== 0 && OFFLINE.test(installed.output)) {
      const reason = installed.output.match(OFFLINE)![1];
      console.log(`      skipped: the npm cache lacks a dependency and the registry is unreachable (${reason})`);
      this.skip();
    }
    mustSucceed('npm install of the tarball', installed);

    const packageDir = path.join(app, 'node_modules', 'trellis');
    const prebuilds = path.join(packageDir, 'prebuilds', `${process.platform}-${process.arch}`);
    assert.ok(
      fs.readdirSync(prebuilds).some((name) => name.endsWith('.node')),
      `no addon in ${prebuilds}`,
    );
    for (const unpacked of ['src', 'test', 'bench', 'build']) {
      assert.equal(fs.existsSync(path.join(packageDir, unpacked)), false, `the installed package has ${unpacked}/`);
    }

    fs.copyFileSync(CONSUMER_APP, path.join(app, 'consumer-app.js'));
    const socket = path.join(work, 'trellisd.sock');
    // The package keeps a code cache (src/code-cache.ts) under XDG_CACHE_HOME: in `work`, removed after.
    const cacheHome = { XDG_CACHE_HOME: path.join(work, 'cache') };
    const used = await run(process.execPath, ['consumer-app.js', socket], app, APP_DEADLINE_MS, cacheHome);
    mustSucceed('the consumer app', used);
    assert.match(used.output, /consumer app ok/);
    const cacheFolders = fs.readdirSync(path.join(work, 'cache', 'trellis'));
    assert.equal(cacheFolders.length, 1, `code cache folders: ${cacheFolders.join(', ')}`);
    assert.ok(fs.existsSync(path.join(work, 'cache', 'trellis', cacheFolders[0], 'connect.js')), 'connect.js cached');
  });
});
