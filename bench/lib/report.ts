/** Turns a suite's report into the text printed after it runs. */
import { formatBytes, formatDuration, formatRate } from './format';
import type { Summary } from './stats';
import type { Row, SuiteReport, TargetCheck } from './suite';
import { renderTable, type Column } from './table';

const COLUMNS: Column[] = [
  { header: 'operation' },
  { header: 'size', align: 'right' },
  { header: 'n', align: 'right' },
  { header: 'median', align: 'right' },
  // p99 from MIN_SAMPLES_FOR_P99 samples up; below that, the range of the few samples (a spread).
  { header: 'p99 | range', align: 'right' },
  { header: 'GB/s', align: 'right' },
  { header: 'faults/op', align: 'right' },
  { header: 'gc ms', align: 'right' },
  { header: 'vs baseline' },
];

export function renderReport(title: string, report: SuiteReport): string {
  const lines = [title];
  if (report.rows.length > 0 || !report.tables?.length) lines.push('', renderTable(COLUMNS, tableRows(report.rows)));
  for (const table of report.tables ?? []) lines.push('', table.title, renderTable(table.columns, table.rows));
  if (report.targets.length > 0 && !report.targetsShownInTables)
    lines.push('', 'Targets (reported, not asserted):', ...report.targets.map(renderTarget));
  if (report.notes.length > 0) lines.push('', 'Notes:', ...report.notes.map((note) => `  - ${note}`));
  return lines.join('\n');
}

function tableRows(rows: readonly Row[]): string[][] {
  const out: string[][] = [];
  let section: string | undefined;
  for (const row of rows) {
    if (row.section !== section) {
      if (section !== undefined) out.push([]);
      out.push([`[${row.section}]`]);
      section = row.section;
    }
    out.push([
      `  ${row.operation}`,
      row.bytes === undefined ? '' : formatBytes(row.bytes),
      String(row.stats.n),
      formatDuration(row.stats.median),
      spread(row.stats),
      row.bytes === undefined ? '' : formatRate(row.bytes, row.stats.median),
      row.faultsPerOp === undefined ? '' : formatCount(row.faultsPerOp),
      row.gcMs === undefined ? '' : row.gcMs.toFixed(1),
      row.versus ?? '',
    ]);
  }
  return out;
}

/** The p99 where there are enough samples for one, else min–max where there are several. */
function spread(stats: Summary): string {
  if (Number.isFinite(stats.p99)) return formatDuration(stats.p99);
  if (stats.n < 2) return '';
  return `${formatDuration(stats.min)}–${formatDuration(stats.max)}`;
}

function renderTarget(check: TargetCheck): string {
  return `  [${check.met ? 'MET ' : 'MISS'}] ${check.target}: ${check.measured}`;
}

function formatCount(value: number): string {
  return value >= 100 ? Math.round(value).toString() : String(Number(value.toPrecision(2)));
}
