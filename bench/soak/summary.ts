/** The soak's printed summary: throughput and latency per request kind, then one PASS/FAIL line per check. */
import { formatBytes } from '../lib/format';
import { percentile } from '../lib/stats';
import { renderTable } from '../lib/table';
import type { Flatness } from './daemon-probe';
import { FD_SLACK, RSS_SLACK, type SoakResult } from './run-soak';

export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

const MiB = 1024 * 1024;
const UNEXPECTED_SHOWN = 10;

export function soakChecks(result: SoakResult): Check[] {
  const { baseline, end, names, rss, fds } = result;
  const expectedTotal = [...result.expected.values()].reduce((total, count) => total + count, 0);
  const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
  const flat = (what: Flatness, unit: (n: number) => string) =>
    `early median ${unit(what.early)}, late median ${unit(what.late)}, allowed ${unit(what.allowed)} ` +
    `(${what.samples[0]} and ${what.samples[1]} samples)`;
  return [
    {
      name: 'no unexpected error',
      pass: result.unexpected.length === 0,
      detail: `${result.unexpected.length} unexpected, ${expectedTotal} expected (counted by code below)`,
    },
    {
      name: 'no client crashed or hung',
      pass: result.crashes.length === 0 && result.hung.length === 0,
      detail: `${result.crashes.length} crashed, ${result.hung.length} did not stop when asked`,
    },
    {
      name: 'named objects readable with their recorded checksum',
      pass: names.wrong.length === 0,
      detail: `${names.checked} names checked (${names.surelyPresent} surely present), ${names.wrong.length} wrong`,
    },
    {
      name: 'memory back to the baseline once clients are gone',
      pass:
        end.memoryUsage === baseline.memoryUsage &&
        end.objects === baseline.objects &&
        end.streams === baseline.streams &&
        end.clients === baseline.clients,
      detail:
        `memoryUsage ${end.memoryUsage} B (baseline ${baseline.memoryUsage}), objects ${end.objects} ` +
        `(${baseline.objects}), streams ${end.streams} (${baseline.streams}), clients ${end.clients} ` +
        `(${baseline.clients})`,
    },
    {
      name: 'daemon fds back to the baseline once clients are gone',
      pass: end.fdsLessSegments <= baseline.fdsLessSegments,
      detail: `${end.fdsLessSegments} fds besides segments (baseline ${baseline.fdsLessSegments})`,
    },
    ...(result.restarts.length === 0 ? [] : [restartCheck(result)]),
    {
      name: `daemon private RSS flat (late <= early x ${1 + RSS_SLACK.relative} + ${mib(RSS_SLACK.absolute)})`,
      pass: rss.flat,
      detail: flat(rss, mib),
    },
    {
      name: `daemon open fds flat (late <= early + ${FD_SLACK.absolute})`,
      pass: fds.flat,
      detail: flat(fds, (n) => n.toFixed(0)),
    },
  ];
}

/** Every worker-owned name held what the ledger allows after each daemon SIGKILL and restart. */
function restartCheck(result: SoakResult): Check {
  const wrong = result.restarts.reduce((total, restart) => total + restart.names.wrong.length, 0);
  const checked = result.restarts.reduce((total, restart) => total + restart.names.checked, 0);
  const ready = result.restarts.map((restart) => restart.readyMs).sort((a, b) => a - b);
  return {
    name: 'named objects survive every daemon SIGKILL and restart on its data dir',
    pass: wrong === 0,
    detail:
      `${result.restarts.length} restarts, ${checked} names checked in all, ${wrong} wrong; ready again in ` +
      `${formatMs(percentile(ready, 50))} median, ${formatMs(ready[ready.length - 1])} at most`,
  };
}

export function renderSoakSummary(result: SoakResult, checks: Check[]): string {
  const { options } = result;
  const lines = [
    `trellis soak: ${options.clients} clients for ${result.runSeconds.toFixed(0)} s, seed ${options.seed}, ` +
      `daemon --size ${options.size}, objects 100 B to ${formatBytes(options.maxObjectBytes)}, ` +
      `${result.kills} clients SIGKILLed and restarted` +
      (result.restarts.length > 0 ? `, the daemon SIGKILLed and restarted ${result.restarts.length} times` : ''),
    '',
  ];
  const rows = [...result.latencies.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, values]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return [
        kind,
        String(values.length),
        (values.length / result.runSeconds).toFixed(1),
        formatMs(percentile(sorted, 50)),
        formatMs(percentile(sorted, 99)),
      ];
    });
  const total = [...result.latencies.values()].reduce((sum, values) => sum + values.length, 0);
  rows.push(['all', String(total), (total / result.runSeconds).toFixed(1), '', '']);
  lines.push(
    renderTable(
      [
        { header: 'request' },
        { header: 'n', align: 'right' },
        { header: 'ops/s', align: 'right' },
        { header: 'p50', align: 'right' },
        { header: 'p99', align: 'right' },
      ],
      rows,
    ),
    '',
    `written: ${formatBytes(result.bytesWritten)} (${formatBytes(result.bytesWritten / result.runSeconds)}/s); ` +
      `daemon CPU ${result.daemonCpuSeconds.toFixed(1)} s ` +
      `(${((100 * result.daemonCpuSeconds) / result.runSeconds).toFixed(0)}% of one core)`,
  );
  if (result.expected.size > 0) {
    const counts = [...result.expected.entries()].sort(([a], [b]) => a.localeCompare(b));
    lines.push(`expected errors: ${counts.map(([key, count]) => `${key} ${count}`).join(', ')}`);
  }
  for (const failure of result.unexpected.slice(0, UNEXPECTED_SHOWN)) {
    lines.push(`unexpected (worker ${failure.worker}, ${failure.kind}): ${failure.code}: ${failure.message}`);
  }
  if (result.unexpected.length > UNEXPECTED_SHOWN) {
    lines.push(`... and ${result.unexpected.length - UNEXPECTED_SHOWN} more unexpected errors`);
  }
  for (const crash of result.crashes) lines.push(`worker ${crash.worker} died (${crash.how}): ${crash.stderr}`);
  const wrongNames = [...result.restarts.flatMap((restart) => restart.names.wrong), ...result.names.wrong];
  for (const wrong of wrongNames.slice(0, UNEXPECTED_SHOWN)) lines.push(`wrong name: ${wrong}`);
  lines.push('', 'Checks:');
  for (const check of checks) lines.push(`  [${check.pass ? 'PASS' : 'FAIL'}] ${check.name}: ${check.detail}`);
  lines.push('', checks.every((check) => check.pass) ? 'soak: PASS' : 'soak: FAIL');
  return lines.join('\n');
}

function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
