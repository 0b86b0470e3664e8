import { spawn } from 'node:child_process';
import { backendFailure, CairnError, ErrorCode, timeout, unsupported } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { maskSecrets } from '../util/redact.js';

/** What a finished command produced. */
export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Options of one command. */
export interface RunOptions {
  /** Run through the configured root helper (e.g. `sudo`). */
  root?: boolean;
  /** Kill the command after this many milliseconds. Default 60 s. */
  timeoutMs?: number;
  /** Strings to mask in logs and error messages (passwords, keys). */
  secrets?: readonly string[];
  /** Exit codes that are not failures. Default `[0]`. */
  okExitCodes?: readonly number[];
  /** Text written to the command's standard input. */
  input?: string;
}

/**
 * Runs OS commands. Every command Cairn runs goes through one of these, as an argv array —
 * never a shell string — so tests and embedders can wrap, record or replay them.
 */
export interface CommandRunner {
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

/** Options of {@link createRunner}. */
export interface RunnerOptions {
  /** Prefix for commands that need root, e.g. `['sudo', '-n']`; empty when already root. */
  rootHelper?: readonly string[];
  logger: Logger;
  defaultTimeoutMs?: number;
}

/** The production runner: `child_process.spawn` with argv arrays, timeouts and redaction. */
export function createRunner(options: RunnerOptions): CommandRunner {
  const rootHelper = options.rootHelper ?? [];
  const log = options.logger;
  return {
    run(argv, opts = {}) {
      if (argv.length === 0 || !argv[0]) throw new CairnError(ErrorCode.Internal, 'empty command');
      const full = opts.root ? [...rootHelper, ...argv] : [...argv];
      const secrets = opts.secrets ?? [];
      const shown = maskSecrets(full.join(' '), secrets);
      const timeoutMs = opts.timeoutMs ?? options.defaultTimeoutMs ?? 60_000;
      const ok = opts.okExitCodes ?? [0];
      const started = performance.now();
      return new Promise<CommandResult>((resolve, reject) => {
        const child = spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        child.stdout.on('data', (d: Buffer) => out.push(d));
        child.stderr.on('data', (d: Buffer) => err.push(d));
        child.on('error', (e: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          if (e.code === 'ENOENT')
            reject(unsupported(`command not found: ${full[0]} (needed for "${shown}")`));
          else reject(backendFailure(`could not run "${shown}": ${e.message}`, { cause: e }));
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const result = {
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(err).toString('utf8'),
            exitCode: code ?? -1,
          };
          const ms = Math.round(performance.now() - started);
          log.debug({ cmd: shown, exitCode: result.exitCode, ms }, 'command finished');
          if (timedOut)
            return reject(timeout(`"${shown}" did not finish within ${timeoutMs} ms and was killed`));
          if (signal || !ok.includes(result.exitCode)) {
            const why = maskSecrets(result.stderr.trim() || result.stdout.trim(), secrets).slice(0, 2000);
            return reject(
              backendFailure(
                `"${shown}" failed (${signal ? `signal ${signal}` : `exit ${result.exitCode}`}): ${why}`,
                {
                  details: { exitCode: result.exitCode },
                },
              ),
            );
          }
          resolve(result);
        });
        if (opts.input !== undefined) child.stdin.end(opts.input);
        else child.stdin.end();
      });
    },
  };
}
