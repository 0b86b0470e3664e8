/**
 * A one-line progress bar on stderr for long copies (clone, restore). It draws only on a
 * terminal: in a pipe or a log file, carriage-return redraws are noise, and with `--json` the
 * stderr stream is reserved for machine-readable errors.
 */

/** The parts of a stream the bar needs (a `tty.WriteStream` has them all). */
export interface BarStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): unknown;
}

/** A running progress bar. */
export interface ProgressBar {
  /** Reports progress as a fraction 0–1 (the library's `onProgress`). */
  update(fraction: number): void;
  /** Removes the bar, leaving the line empty for what follows. */
  done(): void;
}

/** Redraws at most this often: drivers may report thousands of times a second. */
const MIN_INTERVAL_MS = 100;

/**
 * A progress bar labelled `label`, or undefined when progress should not be drawn (not a
 * terminal, or `--json`) — pass `bar?.update` as `onProgress` either way.
 */
export function createProgressBar(
  label: string,
  opts: { json: boolean; stream?: BarStream; now?: () => number },
): ProgressBar | undefined {
  const stream = opts.stream ?? process.stderr;
  if (opts.json || !stream.isTTY) return undefined;
  const now = opts.now ?? Date.now;
  let last = -Infinity;
  let lastPercent = -1;
  let drawn = false;
  return {
    update(fraction: number) {
      const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
      const percent = Math.floor(f * 100);
      const t = now();
      if (percent === lastPercent || (t - last < MIN_INTERVAL_MS && percent < 100)) return;
      last = t;
      lastPercent = percent;
      stream.write(`\r${renderBar(label, f, stream.columns ?? 80)}`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}

/** `label [#########.........]  45%`, fitted to `columns`. */
export function renderBar(label: string, fraction: number, columns: number): string {
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const room = Math.max(10, Math.min(40, columns - label.length - percent.length - 5));
  const filled = Math.round(fraction * room);
  return `${label} [${'#'.repeat(filled)}${'.'.repeat(room - filled)}] ${percent}`;
}
