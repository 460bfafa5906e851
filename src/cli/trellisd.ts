/**
 * `trellisd`: runs the daemon until SIGTERM or SIGINT, then shuts down cleanly and exits 0. Started
 * by npm (npx trellisd, npm run), it also shuts down so when npm goes away (launcher-watch.ts).
 */
import { isTrellisError } from '../errors';
import { parseArgs, USAGE } from '../daemon/options';
import { daemonLog } from '../daemon/log';
import { startDaemon } from '../daemon/server';
import { launchedByPackageManager, watchLauncher } from './launcher-watch';

export async function main(argv = process.argv.slice(2)): Promise<void> {
  let options;
  try {
    options = parseArgs(argv);
  } catch (error) {
    process.stderr.write(`trellisd: ${(error as Error).message}\n`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return;
  }
  let daemon;
  try {
    daemon = await startDaemon(options);
  } catch (error) {
    const code = isTrellisError(error) ? ` [${error.code}]` : '';
    process.stderr.write(`trellisd: cannot start${code}: ${(error as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    daemon.stop().then(
      () => process.exit(0),
      (error: Error) => {
        process.stderr.write(`trellisd: unclean shutdown after ${signal}: ${error.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (launchedByPackageManager()) {
    watchLauncher((launcher) => {
      daemonLog().info(`process ${launcher}, which launched it, exited: shutting down`);
      shutdown(`process ${launcher} exited`);
    });
  }
  const rpc = daemon.rpcEndpoint === undefined ? '' : ` rpc=${daemon.rpcEndpoint}`;
  const http = daemon.httpEndpoint === undefined ? '' : ` http=${daemon.httpEndpoint}`;
  process.stdout.write(`trellisd ready socket=${daemon.socket} instance=${daemon.instanceId}${rpc}${http}\n`);
}

if (require.main === module) void main();
