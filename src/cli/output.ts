/**
 * Rendering of results: aligned tables and field lists for people, JSON for scripts. Commands
 * hand over both shapes and this decides, so no command prints on its own and `--json` output
 * never mixes with human text.
 */
import { formatSize } from '../util/size.js';

/** One column of a table: a header and how to show a row's cell. */
export interface Column<T> {
  header: string;
  value(row: T): string | number | null | undefined;
  /** Right-align (numbers, sizes). */
  right?: boolean;
}

/** Lays rows out in aligned columns under upper-case headers; the last column is not padded. */
export function formatTable<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = rows.map((row) => columns.map((c) => show(c.value(row))));
  const headers = columns.map((c) => c.header.toUpperCase());
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const last = i === values.length - 1;
        if (columns[i]!.right) return v.padStart(widths[i]!);
        return last ? v : v.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/** `label: value` lines with the values aligned; fields whose value is undefined are left out. */
export function formatFields(fields: ReadonlyArray<readonly [string, unknown]>): string {
  const shown = fields.filter(([, v]) => v !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => k.length + 1));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${show(v)}`.trimEnd()).join('\n');
}

/** A size for people, with the exact byte count for anyone who needs it: `1 GiB (1073741824)`. */
export function sizeWithBytes(bytes: number): string {
  return bytes < 1024 ? formatSize(bytes) : `${formatSize(bytes)} (${bytes})`;
}

/** `k=v, k2=v2`, or `-` for an empty map. */
export function formatMap(map: Record<string, unknown>): string {
  const entries = Object.entries(map);
  return entries.length === 0
    ? '-'
    : entries.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ');
}

function show(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Where text goes: a stream such as process.stdout (anything with `write`, for tests). */
export interface Sink {
  write(chunk: string): unknown;
}

/**
 * Where a command's result goes. With `json`, {@link Output.result} prints the data as JSON
 * (objects' `toJSON()` shapes) and notes are silenced; otherwise it prints the human text.
 */
export class Output {
  readonly json: boolean;
  private readonly out: Sink;
  private readonly err: Sink;

  constructor(json: boolean, out: Sink = process.stdout, err: Sink = process.stderr) {
    this.json = json;
    this.out = out;
    this.err = err;
  }

  /** Prints a command's result. `human` is only computed when it is shown. */
  result(data: unknown, human: string | (() => string)): void {
    if (this.json) this.out.write(`${JSON.stringify(data, null, 2)}\n`);
    else {
      const text = typeof human === 'function' ? human() : human;
      if (text.length > 0) this.out.write(`${text}\n`);
    }
  }

  /** A side remark for people (on stderr, so it never pollutes piped output); silent with --json. */
  note(message: string): void {
    if (!this.json) this.err.write(`${message}\n`);
  }

  /** A warning on stderr: `cairn: warning: …`, or a `{"warning":{message}}` line with --json. */
  warn(message: string): void {
    this.err.write(
      this.json ? `${JSON.stringify({ warning: { message } })}\n` : `cairn: warning: ${message}\n`,
    );
  }
}

/** `1 volume`, `2 volumes`. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
