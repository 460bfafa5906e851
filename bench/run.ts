/**
 * `npm run bench [-- NAME...]`: runs every suite in bench/suites (or those whose name contains
 * one of NAME), one after another, prints each suite's table and targets, and writes
 * bench/results/<suite>-<timestamp>.json. `--list` prints the suites.
 *
 * Suites run one at a time and the runner itself stays idle while children measure: on a
 * 2-core machine, a daemon and a measuring client already use both cores.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
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

async function runSuite(suite: Suite): Promise<void> {
  const scope = new Scope();
  activeScope = scope;
  const startedAt = new Date();
  const log = (message: string) => process.stderr.write(`  ${suite.name}: ${message}\n`);
  try {
    process.stderr.write(`bench: running ${suite.name}\n`);
    const report = await suite.run({ scope, log });
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
  if (argv.includes('--list')) {
    for (const suite of suites) process.stdout.write(`${suite.name.padEnd(16)} ${suite.title}\n`);
    return;
  }
  const filters = argv.filter((arg) => !arg.startsWith('-'));
  const chosen =
    filters.length === 0 ? suites : suites.filter((suite) => filters.some((filter) => suite.name.includes(filter)));
  if (chosen.length === 0) {
    throw new Error(`no suite matches ${filters.join(', ')}; suites: ${suites.map((suite) => suite.name).join(', ')}`);
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
      await runSuite(suite);
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
