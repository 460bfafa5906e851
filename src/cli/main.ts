/**
 * `trellis`: the command line over the public client (one file per subcommand in commands/).
 * Exit codes: 0 on success; 1 with one line `trellis: CODE: message` on stderr for a
 * TrellisError (the stack too with --debug); 2 for bad usage, with the command's usage line.
 */
import { Command, CommanderError } from 'commander';
import { isTrellisError, TrellisError } from '../errors';
import { exportCommand } from './commands/export';
import { getCommand } from './commands/get';
import { importCommand } from './commands/import';
import { instancesCommand } from './commands/instances';
import { lineageCommand } from './commands/lineage';
import { lsCommand } from './commands/ls';
import { namesCommand } from './commands/names';
import { persistCommand } from './commands/persist';
import { putCommand } from './commands/put';
import { rmCommand } from './commands/rm';
import { statusCommand } from './commands/status';
import { versionsCommand } from './commands/versions';
import { VERSION } from '../version';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Commander's error for bad usage, with the command it happened in (for its usage line). */
class UsageError extends Error {
  constructor(
    readonly commanderError: CommanderError,
    readonly command: Command,
  ) {
    super(commanderError.message);
  }
}

export function buildProgram(): Command {
  const program = new Command('trellis')
    .description('inspect and move data in a trellis daemon')
    .version(VERSION, '-V, --version')
    .helpCommand(true);
  const subcommands = [
    statusCommand(),
    lsCommand(),
    namesCommand(),
    versionsCommand(),
    lineageCommand(),
    putCommand(),
    getCommand(),
    exportCommand(),
    importCommand(),
    persistCommand(),
    rmCommand(),
    instancesCommand(),
  ];
  for (const command of [program, ...subcommands]) {
    command
      .exitOverride((error) => {
        throw new UsageError(error, command);
      })
      .configureOutput({ outputError: (text, write) => write(`trellis: ${text.replace(/^error: /, '')}`) });
    if (command !== program) program.addCommand(command);
  }
  return program;
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv = process.argv.slice(2)): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    return report(error, argv.includes('--debug'));
  }
}

function report(error: unknown, debug: boolean): number {
  if (error instanceof UsageError) {
    // Help and --version end in a CommanderError too, with exit code 0.
    if (error.commanderError.exitCode === 0) return 0;
    // With no subcommand, commander has just printed the whole help, usage line and all.
    if (error.commanderError.code === 'commander.help') return EXIT_USAGE;
    process.stderr.write(`usage: ${commandPath(error.command)} ${error.command.usage()}\n`);
    return EXIT_USAGE;
  }
  const trellisError = asTrellisError(error);
  const message = trellisError
    ? `${trellisError.code}: ${trellisError.message}`
    : String((error as Error)?.message ?? error);
  process.stderr.write(`trellis: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return EXIT_FAILURE;
}

/**
 * The one place a foreign error becomes a TrellisError: a failed system call on a file the user
 * named (ENOENT, EACCES, EISDIR, ...) is an IOError with the system's message.
 */
function asTrellisError(error: unknown): TrellisError | undefined {
  if (isTrellisError(error)) return error;
  const errno = error as NodeJS.ErrnoException;
  if (error instanceof Error && typeof errno.code === 'string' && typeof errno.syscall === 'string') {
    return new TrellisError('IOError', errno.message, { cause: error });
  }
  return undefined;
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
