/**
 * `npm run bench [-- NAME...] [--OPTION VALUE...]`: runs every suite in bench/suites (or those
 * whose name contains one of NAME), one after another, prints each suite's table and targets, and
 * writes bench/results/<suite>-<timestamp>.json. `--list` prints the suites. Options (`--daemons
 * 4,8` or `--daemons=4,8`) go to every suite chosen; a suite reads the ones it knows.
 *
 * Daemons (bin/trellisd) and children load trellis from dist/, the compiled package a user runs;
 * a dist/ older than src/ is refused (`npm run build:ts`).
 *
 * Suites run one at a time and the runner itself stays idle while children measure: on a
 * 2-core machine, a daemon and a measuring client already use both cores.
 *
 * `--ab REV_OR_DIR` (or TRELLIS_BENCH_AB=REV_OR_DIR) runs the chosen suites that have an A/B mode
 * (`--list` marks them) against another build, alternating the two sample by sample (lib/ab.ts);
 * `--ab-pairs N` sets how many pairs; `--ab-clean` removes the builds kept for earlier --ab runs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AbContext } from './lib/ab';
import { cleanBuilds, currentBuild, prepareBuild, type AbBuild } from './lib/ab-build';
import { assertDistFresh } from './lib/dist';
import { renderReport } from './lib/report';
import { describeMachine, writeResults } from './lib/results';
import { Scope } from './lib/scope';
import type { Suite } from './lib/suite';

const SUITES_DIR = path.join(__dirname, 'suites');

function loadSuites(): Suite[] {
  return fs
    .readdirSync(SUITES_DIR)
    .filter((file) => file.endsWith('.ts'))
    .sort()
    .map((file) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { suite } = require(path.join(SUITES_DIR, file)) as { suite?: Suite };
      if (!suite || suite.name !== path.basename(file, '.ts')) {
        throw new Error(
          `bench/suites/${file} must export \`suite\` named ${JSON.stringify(path.basename(file, '.ts'))}`,
        );
      }
      return suite;
    });
}

interface Arguments {
  filters: string[];
  options: Map<string, string>;
  list: boolean;
}

/** Suite names, and `--key value` / `--key=value` options ('true' for a flag given no value). */
function parseArguments(argv: string[]): Arguments {
  const parsed: Arguments = { filters: [], options: new Map(), list: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--list') parsed.list = true;
    else if (!arg.startsWith('--')) parsed.filters.push(arg);
    else if (arg.includes('=')) parsed.options.set(arg.slice(2, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) parsed.options.set(arg.slice(2), argv[++i]);
    else parsed.options.set(arg.slice(2), 'true');
  }
  return parsed;
}

let activeScope: Scope | undefined;
let interrupted = false;

/** Ctrl-C or a kill still stops the daemon and children and removes the temp folder. */
function stopOnSignal(signal: NodeJS.Signals): void {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
    void (activeScope?.close() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

/** B of an A/B run (`--ab`), prepared once for every suite. */
interface AbRun {
  builds: { A: AbBuild; B: AbBuild };
  pairs?: number;
}

async function runSuite(suite: Suite, options: ReadonlyMap<string, string>, ab?: AbRun): Promise<void> {
  const scope = new Scope();
  activeScope = scope;
  const startedAt = new Date();
  const log = (message: string) => process.stderr.write(`  ${suite.name}: ${message}\n`);
  try {
    process.stderr.write(`bench: running ${suite.name}${ab ? ' (A/B)' : ''}\n`);
    const report =
      ab && suite.runAb
        ? await suite.runAb({ scope, log, options, ...ab } satisfies AbContext)
        : await suite.run({ scope, log, options });
    const durationMs = Date.now() - startedAt.getTime();
    process.stdout.write(`\n${renderReport(`${suite.name}: ${suite.title}${ab ? ' (A/B)' : ''}`, report)}\n`);
    const file = writeResults(ab ? `${suite.name}-ab` : suite.name, startedAt, durationMs, report);
    process.stdout.write(
      `\n${suite.name} took ${(durationMs / 1000).toFixed(1)} s; results in ${path.relative(process.cwd(), file)}\n`,
    );
  } finally {
    await scope.close();
    activeScope = undefined;
  }
}

async function main(argv: string[]): Promise<void> {
  const suites = loadSuites();
  const { filters, options, list } = parseArguments(argv);
  if (list) {
    for (const suite of suites)
      process.stdout.write(`${suite.name.padEnd(16)} ${suite.title}${suite.runAb ? ' [--ab]' : ''}\n`);
    return;
  }
  if (options.has('ab-clean')) {
    const removed = cleanBuilds();
    process.stderr.write(
      `bench: removed ${removed.length} prepared --ab build(s)${removed.map((r) => `\n  ${r}`).join('')}\n`,
    );
    if (!options.has('ab') && !process.env.TRELLIS_BENCH_AB && filters.length === 0) return;
  }
  const abSpec = options.get('ab') ?? process.env.TRELLIS_BENCH_AB;
  let chosen =
    filters.length === 0 ? suites : suites.filter((suite) => filters.some((filter) => suite.name.includes(filter)));
  if (chosen.length === 0) {
    throw new Error(`no suite matches ${filters.join(', ')}; suites: ${suites.map((suite) => suite.name).join(', ')}`);
  }
  if (abSpec !== undefined) {
    const without = chosen.filter((suite) => !suite.runAb);
    chosen = chosen.filter((suite) => suite.runAb);
    const withAb = suites.filter((suite) => suite.runAb).map((suite) => suite.name);
    if (chosen.length === 0)
      throw new Error(`no chosen suite has an A/B mode (--ab); those with one: ${withAb.join(', ')}`);
    if (without.length > 0)
      process.stderr.write(`bench: --ab skips ${without.map((suite) => suite.name).join(', ')} (no A/B mode)\n`);
  }
  // Daemons and children run the compiled package (lib/dist.ts): refuse before any suite starts.
  assertDistFresh();
  let ab: AbRun | undefined;
  if (abSpec !== undefined) {
    if (abSpec === 'true' || abSpec === '') throw new Error('--ab needs a git revision or a directory');
    const pairs = options.has('ab-pairs') ? Number(options.get('ab-pairs')) : undefined;
    if (pairs !== undefined && !(Number.isInteger(pairs) && pairs >= 1))
      throw new Error(`--ab-pairs must be a whole number >= 1, got ${options.get('ab-pairs')}`);
    const log = (message: string) => process.stderr.write(`bench: ${message}\n`);
    ab = { builds: { A: currentBuild(), B: prepareBuild(abSpec, log) }, pairs };
    log(`A = ${ab.builds.A.description}; B = ${ab.builds.B.description}`);
  }
  const machine = describeMachine();
  process.stdout.write(
    `trellis bench: node ${machine.node}, ${machine.cpus} x ${machine.cpuModel}, ${(machine.totalMemoryBytes / 2 ** 30).toFixed(0)} GiB, linux ${machine.kernel}\n`,
  );
  stopOnSignal('SIGINT');
  stopOnSignal('SIGTERM');
  let failed = 0;
  for (const suite of chosen) {
    try {
      await runSuite(suite, options, ab);
    } catch (error) {
      failed++;
      // After Ctrl-C, children dying mid-call is expected, not worth a stack trace.
      if (!interrupted) process.stderr.write(`bench: suite ${suite.name} failed: ${(error as Error).stack ?? error}\n`);
    }
  }
  if (failed > 0) process.exitCode = 1;
}

main(process.argv.slice(2)).catch((error: Error) => {
  process.stderr.write(`bench: ${error.message}\n`);
  process.exitCode = 1;
});
