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
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
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

async function runSuite(suite: Suite, options: ReadonlyMap<string, string>): Promise<void> {
  const scope = new Scope();
  activeScope = scope;
  const startedAt = new Date();
  const log = (message: string) => process.stderr.write(`  ${suite.name}: ${message}\n`);
  try {
    process.stderr.write(`bench: running ${suite.name}\n`);
    const report = await suite.run({ scope, log, options });
    const durationMs = Date.now() - startedAt.getTime();
    process.stdout.write(`\n${renderReport(`${suite.name}: ${suite.title}`, report)}\n`);
    const file = writeResults(suite.name, startedAt, durationMs, report);
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
    for (const suite of suites) process.stdout.write(`${suite.name.padEnd(16)} ${suite.title}\n`);
    return;
  }
  const chosen =
    filters.length === 0 ? suites : suites.filter((suite) => filters.some((filter) => suite.name.includes(filter)));
  if (chosen.length === 0) {
    throw new Error(`no suite matches ${filters.join(', ')}; suites: ${suites.map((suite) => suite.name).join(', ')}`);
  }
  // Daemons and children run the compiled package (lib/dist.ts): refuse before any suite starts.
  assertDistFresh();
  const machine = describeMachine();
  process.stdout.write(
    `trellis bench: node ${machine.node}, ${machine.cpus} x ${machine.cpuModel}, ${(machine.totalMemoryBytes / 2 ** 30).toFixed(0)} GiB, linux ${machine.kernel}\n`,
  );
  stopOnSignal('SIGINT');
  stopOnSignal('SIGTERM');
  let failed = 0;
  for (const suite of chosen) {
    try {
      await runSuite(suite, options);
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
