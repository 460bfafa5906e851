#!/usr/bin/env node
/**
 * npm run fuzz -- TARGET [--seconds N] [--seed S]
 *
 * Runs one target's fast-check properties (test/fuzz/TARGET.test.ts) with a large number of runs
 * for about N seconds per target (default 60), shared evenly by the target's properties. Each
 * property prints how many inputs it tried.
 * Targets: frames, validate, csv, shareable-list-layout, dataframe-layout, or all. A failure prints its seed and
 * path, which reproduce it: FUZZ_SEED=S npx mocha test/fuzz/TARGET.test.ts.
 *
 * fast-check rather than libFuzzer (@jazzer.js/core 4.0.0): jazzer installs from npm, but the
 * linux-x64 fuzzer binary it ships needs glibc 2.38 and these machines (Debian 12) have 2.36, so
 * it does not load; building it from source needs LLVM's libFuzzer, which npm does not bring.
 */
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const TARGETS = ['frames', 'validate', 'csv', 'shareable-list-layout', 'dataframe-layout'];
const args = process.argv.slice(2);
const target = args.find((arg) => !arg.startsWith('--')) ?? 'all';
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] !== undefined ? Number(args[at + 1]) : fallback;
};
const seconds = option('seconds', 60);
const seed = option('seed', Date.now() % 2 ** 31);
const targets = target === 'all' ? TARGETS : [target];
if (!targets.every((t) => TARGETS.includes(t)) || !(seconds > 0)) {
  console.error(`usage: npm run fuzz -- ${TARGETS.join('|')}|all [--seconds N] [--seed S]`);
  process.exit(2);
}
const root = path.resolve(__dirname, '..');
const mocha = path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');

/** How many properties (mocha tests) a target file holds, so that they can share its time. */
function propertyCount(file) {
  const listed = spawnSync(process.execPath, [mocha, '--dry-run', '--reporter', 'json', file], { cwd: root });
  try {
    return Math.max(1, JSON.parse(listed.stdout.toString()).stats.tests);
  } catch {
    return 1;
  }
}

let failed = false;
for (const name of targets) {
  const file = `test/fuzz/${name}.test.ts`;
  const properties = propertyCount(file);
  const ms = Math.round((seconds * 1000) / targets.length / properties);
  console.log(`fuzz ${name}: ${properties} properties, about ${ms / 1000} s each, seed ${seed}`);
  const result = spawnSync(process.execPath, [mocha, file, '--timeout', '0'], {
    cwd: root,
    stdio: 'inherit',
    // Runs bounded by time, not count: a very large count that the time limit cuts short.
    env: { ...process.env, FUZZ_RUNS: '100000000', FUZZ_MS: String(ms), FUZZ_SEED: String(seed) },
  });
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
