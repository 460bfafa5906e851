/**
 * The compiled package, dist/, as a user's process loads it. Bench daemons run bin/trellisd and
 * bench children load trellis from here rather than from src/ through tsx: tsx compiles a module
 * when it is first required (trellis loads some at first use, inside the timings), and its
 * CommonJS output reaches every imported binding through a getter, also on hot paths.
 *
 * dist/ older than src/ would measure other code than the sources say, so it is refused.
 *
 * A process started with TRELLIS_BENCH_BUILD=DIR loads another build's package from DIR (its
 * dist/, which loads its own build/ addon): an A/B run's children (ab.ts, ab-build.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Trellis from '../../src/index';

export const BUILD_ENV = 'TRELLIS_BENCH_BUILD';
const REPO_ROOT = path.resolve(process.env[BUILD_ENV] || path.join(__dirname, '..', '..'));
const SRC_DIR = path.join(REPO_ROOT, 'src');
export const DIST_DIR = path.join(REPO_ROOT, 'dist');
/** The daemon's shipped entry point (package.json "bin"): it runs dist/cli/trellisd.js. */
export const TRELLISD_BIN = trellisdOf(REPO_ROOT);

/** A build's daemon entry point, from its package root. */
export function trellisdOf(root: string): string {
  return path.join(root, 'bin', 'trellisd');
}

/**
 * Why dist/ cannot stand for src/ (a source with no compiled file, or one newer than it), or
 * undefined when every source has a compiled file at least as new.
 */
export function distStaleness(): string | undefined {
  for (const entry of fs.readdirSync(SRC_DIR, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) continue;
    const source = path.join(entry.parentPath, entry.name);
    const compiled = path.join(DIST_DIR, path.relative(SRC_DIR, source)).replace(/\.ts$/, '.js');
    const relative = path.relative(REPO_ROOT, source);
    if (!fs.existsSync(compiled)) return `${relative} has no ${path.relative(REPO_ROOT, compiled)}`;
    if (fs.statSync(compiled).mtimeMs < fs.statSync(source).mtimeMs)
      return `${relative} is newer than ${path.relative(REPO_ROOT, compiled)}`;
  }
  return undefined;
}

/** Whether this process has found dist/ fresh already (a check reads every source's mtime). */
let checked = false;

/** Throws, naming the first stale file, unless dist/ is up to date with src/ (checked once a process). */
export function assertDistFresh(): void {
  if (checked) return;
  const stale = distStaleness();
  if (stale) throw new Error(`dist/ is stale (${stale}): run \`npm run build:ts\` first`);
  checked = true;
}

/**
 * A module of the compiled package by its path under dist/ without .js ('protocol/framing'),
 * typed by its source: `loadDist<typeof import('../../src/protocol/framing')>('protocol/framing')`.
 */
export function loadDist<T>(modulePath: string): T {
  assertDistFresh();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the compiled package, as users load it
  return require(path.join(DIST_DIR, `${modulePath}.js`)) as T;
}

/** What `require('trellis')` gives a user. */
export function loadTrellis(): typeof Trellis {
  return loadDist<typeof Trellis>('index');
}
