/**
 * What every trellis subcommand shares: `--socket` and `--debug`, `--json` on listings, and the
 * parsers for values given on the command line. A parser throws commander's
 * InvalidArgumentError, so a bad value is bad usage (exit 2 with a usage line), not a failure.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { connect, type TrellisClient } from '../connect';

export interface CommonOptions {
  socket?: string;
  debug?: boolean;
}

export interface ListingOptions extends CommonOptions {
  json?: boolean;
}

/** Adds the options every command takes. */
export function withCommonOptions(command: Command): Command {
  return command
    .option('--socket <path>', 'the daemon socket (default: $TRELLIS_SOCKET, then the default path)')
    .option('--debug', 'print the stack trace of an error');
}

/** Adds `--json` to a listing. */
export function withJsonOption(command: Command): Command {
  return command.option('--json', 'print JSON instead of a table');
}

export function ttlOption(): Option {
  return new Option('--ttl <seconds>', 'expire after this many seconds').argParser(parsePositiveNumber);
}

export function labelOption(description: string): Option {
  return new Option('--label <key=value>', description).argParser(collectLabel).default(undefined);
}

/** Connects as `connect` does, runs `work`, and always closes the client. */
export async function withClient<T>(options: CommonOptions, work: (client: TrellisClient) => Promise<T>): Promise<T> {
  const client = await connect(options.socket);
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

export function parsePositiveNumber(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(`expected a positive number of seconds, got ${JSON.stringify(text)}`);
  }
  return value;
}

export function parsePositiveInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

/** `--label k=v`, repeatable: collects into one record. */
function collectLabel(text: string, previous: Record<string, string> | undefined): Record<string, string> {
  const at = text.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`expected key=value, got ${JSON.stringify(text)}`);
  return { ...previous, [text.slice(0, at)]: text.slice(at + 1) };
}
