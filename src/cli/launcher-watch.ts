/**
 * Why the daemon watches what launched it: `npx trellisd` (and an `npm run` script that runs
 * trellisd) starts it as npm -> sh -c -> node, and a signal sent to npm does not reach node. On
 * SIGTERM npm ends, its sh ends with it, and the daemon would live on as an orphan holding its
 * socket; on SIGKILL npm ends and the sh keeps waiting. So a daemon that a package manager
 * started watches its parent and its parent's parent (the sh and npm, or npm and whatever ran
 * it) and shuts down, as on SIGTERM, once either is gone.
 *
 * Only then: started any other way (`node bin/trellisd` under systemd, from a test, with nohup),
 * a daemon may outlive whoever launched it on purpose, and nothing is watched.
 *
 * Polled from JS rather than prctl(PR_SET_PDEATHSIG): the death signal comes only for the
 * immediate parent (the sh, which survives a SIGKILLed npm) and fires when the parent *thread*
 * that forked exits, not the process.
 */
import * as fs from 'node:fs';

/** How often the launchers are checked: the daemon outlives them by at most this long. */
export const LAUNCHER_POLL_MS = 500;

/** How many launchers up the tree are watched: the parent, and its parent. */
const WATCHED_LEVELS = 2;

interface ProcessStat {
  ppid: number;
  state: string;
  startTime: string;
}

interface Launcher {
  pid: number;
  startTime: string;
}

/** npm, yarn and pnpm set npm_lifecycle_event ('npx' for npx) for the commands they run. */
export function launchedByPackageManager(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.npm_lifecycle_event !== undefined;
}

/**
 * Calls `onGone` once when the parent or grandparent of this process exits (pid 1, init or a
 * supervisor such as systemd, is never watched: it does not go away). Returns a stop function.
 * The poll timer is unref'd: it never keeps the process running by itself.
 */
export function watchLauncher(onGone: (launcher: number) => void, intervalMs = LAUNCHER_POLL_MS): () => void {
  const launchers: Launcher[] = [];
  for (let pid = process.ppid; pid > 1 && launchers.length < WATCHED_LEVELS;) {
    const stat = readStat(pid);
    if (!stat) break;
    launchers.push({ pid, startTime: stat.startTime });
    pid = stat.ppid;
  }
  if (launchers.length === 0) return () => {};
  const timer = setInterval(() => {
    const gone = launchers.find((launcher) => !isRunning(launcher));
    if (gone === undefined) return;
    clearInterval(timer);
    onGone(gone.pid);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Running, and the same process: not a zombie, and not another process that got its pid since. */
function isRunning(launcher: Launcher): boolean {
  const stat = readStat(launcher.pid);
  return stat !== undefined && stat.startTime === launcher.startTime && stat.state !== 'Z' && stat.state !== 'X';
}

/** Fields of /proc/PID/stat, or undefined once the process is gone. */
function readStat(pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // Field 2, the command name, may hold spaces and parentheses: count fields after the last ')'.
  // There, field 3 (state) is [0], field 4 (ppid) is [1] and field 22 (start time) is [19].
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], ppid: Number(fields[1]), startTime: fields[19] };
}
