/** The soak's command line: `npm run soak -- --clients 32 --minutes 10 [--seed N] ...`. */
import { parseSize } from '../../src/daemon/sizes';

export interface SoakOptions {
  clients: number;
  seconds: number;
  seed: number;
  /** The daemon's --size. */
  size: string;
  /** The largest object a worker makes. */
  maxObjectBytes: number;
  /** Seconds between SIGKILLs of a random worker (each is restarted); 0 for none. */
  killEverySeconds: number;
  /** Seconds between samples of the daemon's RSS, fds and status. */
  sampleSeconds: number;
  /**
   * Seconds between SIGKILLs of the daemon itself, restarted on its data dir; 0 for none. With
   * it the daemon runs with --data-dir and workers persist what they name.
   */
  restartDaemonEvery: number;
}

export const USAGE =
  'usage: npm run soak -- [--clients 32] [--minutes 10 | --seconds N] [--seed N] [--size 4GiB] ' +
  '[--max-object 64MiB] [--kill-every S] [--sample-every S] [--restart-daemon-every S]';

export function parseSoakOptions(argv: string[]): SoakOptions {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    if (!flag.startsWith('--') || argv[i + 1] === undefined) throw new Error(`bad argument ${flag}\n${USAGE}`);
    values.set(flag.slice(2), argv[i + 1]);
  }
  const number = (key: string, fallback: number) => {
    const value = values.has(key) ? Number(values.get(key)) : fallback;
    values.delete(key);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${key} must be a non-negative number\n${USAGE}`);
    return value;
  };
  const minutes = number('minutes', 10);
  const seconds = number('seconds', minutes * 60);
  const options: SoakOptions = {
    clients: Math.max(1, Math.floor(number('clients', 32))),
    seconds,
    seed: Math.floor(number('seed', 1)),
    size: values.get('size') ?? '4GiB',
    maxObjectBytes: parseSize(values.get('max-object') ?? '64MiB'),
    // About forty kills over a run, but not more often than every 2 s nor rarer than every 15 s.
    killEverySeconds: number('kill-every', Math.min(15, Math.max(2, seconds / 40))),
    sampleSeconds: number('sample-every', 1),
    restartDaemonEvery: number('restart-daemon-every', 0),
  };
  values.delete('size');
  values.delete('max-object');
  if (values.size > 0) throw new Error(`unknown option --${[...values.keys()][0]}\n${USAGE}`);
  if (options.seconds <= 0) throw new Error(`the run must last more than 0 seconds\n${USAGE}`);
  return options;
}
