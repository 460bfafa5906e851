/** What /proc says about another process: used to charge work to the daemon, not the client. */
import * as fs from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * User plus system CPU time of `pid` so far, in milliseconds (10 ms resolution). Fields 14 and
 * 15 of /proc/PID/stat, counted after the command name, which may itself contain spaces.
 */
export function cpuTimeMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}
