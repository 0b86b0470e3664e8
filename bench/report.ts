import type { Summary } from './stats.js';

/** Who a measurement is of: Cairn doing the work, or the bare minimum way of doing the same. */
export type Role = 'cairn' | 'floor';

/** Cairn's cost relative to a floor: how many times the floor's time Cairn takes (>1 = slower). */
export interface Ratio {
  floor: string;
  /** Compared on median latency, or on throughput (floor ops/s ÷ Cairn ops/s). */
  basis: 'p50' | 'ops/s';
  ratio: number;
}

/** One timed thing: a distribution of per-operation latencies, and throughput when relevant. */
export interface Measurement {
  label: string;
  role: Role;
  /** Per-operation wall time, in milliseconds. */
  latency: Summary;
  /** Operations per second over the whole run (concurrent loops included). */
  opsPerSec?: number;
  /** Set on Cairn measurements: the ratio against each floor. */
  vs?: Ratio[];
}

/** The outcome of one case of a benchmark (e.g. create+delete, sqlite, concurrency 8). */
export interface CaseResult {
  benchmark: string;
  case: string;
  /** `skipped`: this machine can't run it (no root, no loop devices); `error`: it broke. */
  status: 'ok' | 'skipped' | 'error';
  reason?: string;
  measurements: Measurement[];
  notes: string[];
}

/** The whole run, as written by `--json`. */
export interface RunReport {
  tool: 'cairn-bench';
  version: 1;
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  /** Latencies are in milliseconds; ratios are Cairn's time over the floor's. */
  units: { latency: 'ms'; opsPerSec: 'operations per second'; ratio: 'cairn time / floor time' };
  environment: Record<string, unknown>;
  results: CaseResult[];
}

/**
 * Records on `cairn` its ratio against `floor`: median against median, or (with `ops/s`)
 * throughput against throughput, both as "times the floor's cost".
 */
export function compare(cairn: Measurement, floor: Measurement, basis: Ratio['basis'] = 'p50'): void {
  const ratio =
    basis === 'ops/s'
      ? (floor.opsPerSec ?? Number.NaN) / (cairn.opsPerSec ?? Number.NaN)
      : cairn.latency.p50 / floor.latency.p50;
  cairn.vs = [...(cairn.vs ?? []), { floor: floor.label, basis, ratio }];
}

/** A result for a case that did not run. */
export function notRun(
  benchmark: string,
  name: string,
  status: 'skipped' | 'error',
  reason: string,
): CaseResult {
  return { benchmark, case: name, status, reason, measurements: [], notes: [] };
}

/** Milliseconds, in a unit that keeps 3-4 significant digits. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  // Thresholds sit where rounding would carry into the next unit (99.96 ms prints as 100 ms).
  if (ms >= 9_999.5) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 999.5) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 99.95) return `${ms.toFixed(0)} ms`;
  if (ms >= 9.995) return `${ms.toFixed(1)} ms`;
  if (ms >= 0.9995) return `${ms.toFixed(2)} ms`;
  return `${(ms * 1000).toFixed(0)} µs`;
}

function formatOps(ops: number | undefined): string {
  if (ops === undefined || !Number.isFinite(ops)) return '';
  return ops >= 100 ? Math.round(ops).toLocaleString('en-US') : ops.toFixed(1);
}

function formatRatio(r: Ratio): string {
  const x = r.ratio >= 100 ? r.ratio.toFixed(0) : r.ratio >= 10 ? r.ratio.toFixed(1) : r.ratio.toFixed(2);
  return `${x}× ${r.floor}${r.basis === 'ops/s' ? ' (ops/s)' : ''}`;
}

const HEADERS = ['benchmark', 'case', 'measurement', 'n', 'p50', 'p90', 'p99', 'ops/s', 'cairn ÷ floor'];
const RIGHT = new Set([3, 4, 5, 6, 7]);

/** The human table: one line per measurement, grouped by benchmark and case, then notes. */
export function formatTable(results: readonly CaseResult[]): string {
  // A row that is a single string (a case that did not run) spans the columns after `case`.
  const rows: Array<string[] | { head: string[]; text: string }> = [];
  const notes: string[] = [];
  for (const r of results) {
    const first = rows.length;
    const head = () => (rows.length === first ? [r.benchmark, r.case] : ['', '']);
    if (r.status !== 'ok') {
      rows.push({ head: head(), text: `${r.status.toUpperCase()}: ${(r.reason ?? '').split('\n')[0]}` });
    }
    for (const m of r.measurements) {
      const label = m.role === 'floor' ? `floor: ${m.label}` : m.label;
      const [firstRatio, ...more] = m.vs ?? [];
      rows.push([
        ...head(),
        label,
        String(m.latency.n),
        formatMs(m.latency.p50),
        formatMs(m.latency.p90),
        formatMs(m.latency.p99),
        formatOps(m.opsPerSec),
        firstRatio ? formatRatio(firstRatio) : '',
      ]);
      for (const x of more) rows.push(['', '', '', '', '', '', '', '', formatRatio(x)]);
    }
    for (const n of r.notes) notes.push(`[${r.benchmark} / ${r.case}] ${n}`);
  }
  const cellsOf = (row: (typeof rows)[number]) => (Array.isArray(row) ? row : row.head);
  const widths = HEADERS.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (cellsOf(row)[i] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (RIGHT.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(HEADERS), widths.map((w) => '-'.repeat(w)).join('  ')];
  let previous = '';
  for (const row of rows) {
    const cells = cellsOf(row);
    // A blank line between benchmarks keeps the groups apart.
    if (cells[0] && cells[0] !== previous && out.length > 2) out.push('');
    if (cells[0]) previous = cells[0];
    out.push(Array.isArray(row) ? line(row) : `${line([...row.head, ''])}  ${row.text}`);
  }
  if (notes.length) out.push('', ...notes);
  return `${out.join('\n')}\n`;
}

/** The JSON form of a run. */
export function formatJson(report: RunReport): string {
  // Microsecond precision is plenty; more digits are noise.
  const round = (_key: string, v: unknown) =>
    typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v;
  return `${JSON.stringify(report, round, 2)}\n`;
}
