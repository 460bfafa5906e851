/**
 * The daemon's log: one line per notable event (start, stop, a client's protocol error, a spill,
 * a failed persist, etcd lost and back, a peer gone) on stderr, through pino. Nothing on a
 * request's path logs: a line is a rare event, so it is written synchronously, in order with
 * the daemon's other stderr output.
 *
 * Two formats: `text`, for people (`trellisd: message key=value`, as the daemon's warnings always
 * read, with the time and level in front on a terminal), and `json`, one object a line. stdout
 * stays the ready line's alone.
 *
 * One logger per process, built on first use: the daemon's parts import `daemonLog()` rather than
 * take a logger in every constructor, and startDaemon sets its level and format once.
 */
import { pino, type Logger } from 'pino';
import { TrellisError } from '../errors';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogOptions {
  level: LogLevel;
  format: LogFormat;
}

let current: Logger | undefined;

/** The level from $TRELLIS_LOG when set, else info. Errors: InvalidArgument. */
export function defaultLogLevel(): LogLevel {
  const fromEnv = process.env.TRELLIS_LOG;
  return fromEnv ? checkLogLevel('TRELLIS_LOG', fromEnv) : 'info';
}

export function checkLogLevel(source: string, level: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new TrellisError('InvalidArgument', `${source} must be one of ${LOG_LEVELS.join('|')}, got ${level}`);
  }
  return level as LogLevel;
}

export function checkLogFormat(source: string, format: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(format)) {
    throw new TrellisError('InvalidArgument', `${source} must be one of ${LOG_FORMATS.join('|')}, got ${format}`);
  }
  return format as LogFormat;
}

/** Replaces the process's daemon logger. */
export function configureDaemonLog(options: LogOptions): Logger {
  const destination =
    options.format === 'json' ? pino.destination({ fd: 2, sync: true }) : new TextLines(process.stderr.isTTY === true);
  current = pino(
    { level: options.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    destination,
  );
  return current;
}

export function daemonLog(): Logger {
  return current ?? configureDaemonLog({ level: safeDefaultLevel(), format: 'text' });
}

function safeDefaultLevel(): LogLevel {
  try {
    return defaultLogLevel();
  } catch {
    return 'info';
  }
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
const LEVEL_COLORS: Record<number, string> = {
  20: '\x1b[90m',
  30: '\x1b[32m',
  40: '\x1b[33m',
  50: '\x1b[31m',
  60: '\x1b[31m',
};
/** Fields every line has, said by the line's shape instead. */
const HIDDEN_FIELDS = new Set(['level', 'time', 'pid', 'msg']);

/**
 * pino's JSON lines, rewritten for people: `trellisd: message key=value ...`. On a terminal the
 * time and a colored level go in front; elsewhere a warning or error ends with level=...
 */
class TextLines {
  constructor(private readonly terminal: boolean) {}

  write(line: string): void {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      process.stderr.write(line);
      return;
    }
    const level = Number(entry.level);
    let text = `trellisd: ${String(entry.msg ?? '')}`;
    for (const [key, value] of Object.entries(entry)) {
      if (!HIDDEN_FIELDS.has(key)) text += ` ${key}=${formatValue(value)}`;
    }
    if (this.terminal) {
      const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : '';
      const name = (LEVEL_NAMES[level] ?? String(level)).toUpperCase().padEnd(5);
      text = `${time} ${LEVEL_COLORS[level] ?? ''}${name}\x1b[0m ${text}`;
    } else if (level >= 40) {
      text += ` level=${LEVEL_NAMES[level] ?? level}`;
    }
    process.stderr.write(`${text}\n`);
  }
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}
