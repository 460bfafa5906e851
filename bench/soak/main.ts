/**
 * `npm run soak -- --clients 32 --minutes 10`: see run-soak.ts for what it does and checks.
 * Prints a summary on stdout (progress on stderr) and exits 1 when a check fails.
 */
import { Scope } from '../lib/scope';
import { parseSoakOptions } from './options';
import { runSoak } from './run-soak';
import { renderSoakSummary, soakChecks } from './summary';

async function main(): Promise<void> {
  const options = parseSoakOptions(process.argv.slice(2));
  const scope = new Scope();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void scope.close().finally(() => process.exit(130)));
  }
  try {
    const result = await runSoak(scope, options, (line) => process.stderr.write(`soak: ${line}\n`));
    const checks = soakChecks(result);
    process.stdout.write(`${renderSoakSummary(result, checks)}\n`);
    if (!checks.every((check) => check.pass)) process.exitCode = 1;
  } finally {
    await scope.close();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`soak: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
