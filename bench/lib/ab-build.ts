/**
 * The builds an A/B run (ab.ts) alternates. A is this tree (its dist/, build/ and bin/trellisd);
 * B is what `--ab` names: a directory holding a built trellis (dist/ and build/Release/trellis.node,
 * as `npm install` leaves a clone), or a git revision of this repository, which is exported
 * (`git archive`, so no worktree is registered in the shared .git) to
 * <tmpdir>/trellis-bench-ab/<tree>/<commit>/, given this tree's node_modules by a symlink, and built
 * there with its own package.json's `build:native` and `build:ts`. A built commit is kept and reused
 * by later runs of this tree (the directory is named by the full hash, and marked ready only once
 * both builds passed); `--ab-clean` removes this tree's.
 *
 * One folder per tree (<tree>: the CRC-32 of its path): a build linked to another worktree's
 * node_modules loads another copy of apache-arrow than the bench child's, so B's first DataFrame
 * get loaded and compiled all of it (121 ms against 1.3 ms), and its connect() preloaded it too.
 *
 * Only the library is B's: the bench's own code (suites and bench/children scripts) is this tree's
 * in both, so both builds are measured by the same code. A child loads the build named by
 * TRELLIS_BENCH_BUILD (dist.ts), a daemon runs that build's bin/trellisd (daemon.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import * as tar from 'tar';
import type { BuildLabel } from './ab-stats';
import { REPO_ROOT } from './child';

export const AB_CACHE_DIR = path.join(os.tmpdir(), 'trellis-bench-ab', crc32(REPO_ROOT).toString(16).padStart(8, '0'));
/** Written last into a prepared commit's directory: without it the directory is built again. */
const READY_MARK = '.trellis-bench-ab-ready';
const ADDON = path.join('build', 'Release', 'trellis.node');

export interface AbBuild {
  label: BuildLabel;
  /** Its package root: dist/, build/, bin/trellisd. */
  root: string;
  /** What it is, for the report: 'this tree (b02f24d)', 'HEAD~10 = 0da1b74 (...)'. */
  description: string;
}

/** This tree, as A. */
export function currentBuild(): AbBuild {
  const head = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--untracked-files=no']).length > 0;
  return { label: 'A', root: REPO_ROOT, description: `this tree (${head}${dirty ? ' + uncommitted changes' : ''})` };
}

/**
 * B, from `--ab SPEC`: a directory with a built trellis, or a git revision, built on first use.
 * `log` reports the (slow) preparing steps.
 */
export function prepareBuild(spec: string, log: (message: string) => void): AbBuild {
  if (fs.existsSync(spec) && fs.statSync(spec).isDirectory()) {
    const root = path.resolve(spec);
    for (const needed of ['dist/index.js', ADDON, 'bin/trellisd']) {
      if (!fs.existsSync(path.join(root, needed)))
        throw new Error(`--ab ${spec}: ${path.join(root, needed)} is missing; run \`npm install\` there first`);
    }
    return { label: 'B', root, description: `directory ${root}` };
  }
  const commit = resolveCommit(spec);
  const subject = git(['log', '-1', '--format=%h %ad %s', '--date=format:%m-%d %H:%M', commit]);
  const root = path.join(AB_CACHE_DIR, commit);
  const description = `${spec} = ${subject.length > 70 ? `${subject.slice(0, 67)}...` : subject}`;
  if (fs.existsSync(path.join(root, READY_MARK))) {
    log(`B: reusing the build of ${commit.slice(0, 10)} in ${root}`);
    linkNodeModules(root);
    return { label: 'B', root, description };
  }
  // Built under a name of its own, then renamed into place: another run preparing the same commit
  // at the same time (the cache is the machine's) never sees a half-built tree.
  const building = `${root}.building-${process.pid}`;
  fs.rmSync(building, { recursive: true, force: true });
  fs.mkdirSync(building, { recursive: true });
  try {
    log(`B: exporting ${commit.slice(0, 10)} to ${building}`);
    const archive = `${building}.tar`;
    try {
      git(['archive', '--format=tar', `--output=${archive}`, commit]);
      tar.x({ file: archive, cwd: building, sync: true });
    } finally {
      fs.rmSync(archive, { force: true });
    }
    linkNodeModules(building);
    warnOnDependencyChange(building, log);
    for (const script of ['build:native', 'build:ts']) {
      log(`B: npm run ${script} (nice -n 10) in ${building}`);
      const built = spawnSync('nice', ['-n', '10', 'npm', 'run', script], { cwd: building, encoding: 'utf8' });
      if (built.status !== 0) {
        throw new Error(
          `--ab ${spec}: npm run ${script} failed in ${building} (${built.error?.message ?? `exit ${built.status}`}):\n` +
            `${(built.stdout + built.stderr).slice(-3000)}`,
        );
      }
    }
    fs.writeFileSync(path.join(building, READY_MARK), `${commit}\n`);
    if (!fs.existsSync(path.join(root, READY_MARK))) {
      fs.rmSync(root, { recursive: true, force: true });
      fs.renameSync(building, root);
    }
  } finally {
    fs.rmSync(building, { recursive: true, force: true });
  }
  return { label: 'B', root, description };
}

/** Removes every commit this tree prepared for --ab; returns what it removed. */
export function cleanBuilds(): string[] {
  if (!fs.existsSync(AB_CACHE_DIR)) return [];
  const removed = fs.readdirSync(AB_CACHE_DIR).map((entry) => path.join(AB_CACHE_DIR, entry));
  fs.rmSync(AB_CACHE_DIR, { recursive: true, force: true });
  return removed;
}

/**
 * Its node_modules: this tree's, by a symlink (its own would need the registry and minutes; this
 * tree's are close enough for a nearby commit, and a package.json that differs is reported). Made
 * again when the tree that prepared a kept build, and its node_modules, are gone.
 */
function linkNodeModules(root: string): void {
  const link = path.join(root, 'node_modules');
  if (fs.existsSync(link)) return;
  fs.rmSync(link, { force: true });
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), link, 'dir');
}

function resolveCommit(spec: string): string {
  try {
    return git(['rev-parse', '--verify', '--quiet', `${spec}^{commit}`]);
  } catch {
    throw new Error(`--ab ${spec}: neither a directory nor a git revision of ${REPO_ROOT}`);
  }
}

function warnOnDependencyChange(root: string, log: (message: string) => void): void {
  const read = (dir: string) =>
    JSON.stringify(
      (({ dependencies, devDependencies }) => ({ dependencies, devDependencies }))(
        JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>,
      ),
    );
  if (read(root) !== read(REPO_ROOT))
    log(`B: its package.json lists other dependencies than this tree's; it runs with this tree's node_modules`);
}

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}
