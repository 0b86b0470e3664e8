/**
 * How a failure reaches the user: `cairn: <message>` on stderr (a stack trace only with
 * CAIRN_DEBUG=1), or `{"error":{code,message}}` with --json; and which exit code it gives.
 * Library messages never carry secrets (the runner masks them), and nothing else is printed.
 */
import { CommanderError } from 'commander';
import { CairnError } from '../util/errors.js';
import { EXIT_INTERNAL, EXIT_USAGE, exitCodeFor } from './exit-codes.js';

/**
 * Thrown after the failures were already written (e.g. by `volume delete A B` when only B
 * failed): main exits with `exitCode` without printing again.
 */
export class ReportedError extends Error {
  readonly exitCode: number;
  constructor(exitCode: number) {
    super(`exit ${exitCode}`);
    this.exitCode = exitCode;
  }
}

/** The stable shape of an error for people and scripts, with its exit code. */
export function describeError(err: unknown): {
  exitCode: number;
  error: { code: string; message: string; details?: Record<string, unknown> };
} {
  if (err instanceof CairnError) return { exitCode: exitCodeFor(err.code), error: err.toJSON() };
  if (err instanceof CommanderError) {
    // Commander's usage errors: unknown option, missing argument, bad option value … and the
    // help it shows for a command that needs a subcommand (its message is a placeholder).
    const message =
      err.code === 'commander.help'
        ? 'a subcommand is required (see --help)'
        : err.message.replace(/^error: /, '');
    return { exitCode: err.exitCode === 0 ? 0 : EXIT_USAGE, error: { code: 'INVALID_ARGUMENT', message } };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { exitCode: EXIT_INTERNAL, error: { code: 'INTERNAL', message } };
}

/** Writes `err` to `stream` and returns the exit code. */
export function reportError(
  err: unknown,
  opts: { json: boolean; debug: boolean; stream?: NodeJS.WritableStream },
): number {
  const stream = opts.stream ?? process.stderr;
  const { exitCode, error } = describeError(err);
  if (opts.json) stream.write(`${JSON.stringify({ error })}\n`);
  else {
    const hint = exitCode === EXIT_INTERNAL && !opts.debug ? ' (set CAIRN_DEBUG=1 for details)' : '';
    stream.write(`cairn: ${error.message}${hint}\n`);
  }
  if (opts.debug) stream.write(`${stackOf(err)}\n`);
  return exitCode;
}

function stackOf(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && depth < 5; depth++) {
    parts.push(
      depth === 0 ? String((e as Error).stack ?? e) : `caused by: ${String((e as Error).stack ?? e)}`,
    );
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join('\n');
}
