/**
 * Commands that take several references (`volume delete A B C`) work like `rm`: each one is
 * tried, a failure is reported as it happens without stopping the others, and the command
 * exits with the first failure's code after printing what did succeed.
 */
import { debugEnabled } from './debug.js';
import { ReportedError, reportError } from './errors.js';
import type { Output } from './output.js';

/**
 * Runs `fn` on each ref in turn, then `print`s the results of those that succeeded (possibly
 * none: `--json` output keeps its shape either way).
 * @throws ReportedError when any failed (their errors are already on stderr)
 */
export async function forEachRef<T>(
  refs: readonly string[],
  out: Output,
  fn: (ref: string) => Promise<T>,
  print: (done: T[]) => void,
): Promise<void> {
  const done: T[] = [];
  let exitCode = 0;
  for (const ref of refs) {
    try {
      done.push(await fn(ref));
    } catch (err) {
      exitCode ||= reportError(err, { json: out.json, debug: debugEnabled() });
    }
  }
  print(done);
  if (exitCode !== 0) throw new ReportedError(exitCode);
}
