/**
 * What the CLI shows of the library's log. Normally only warnings (a clean-up that failed,
 * something left behind) reach stderr; `CAIRN_DEBUG=1` adds everything — every OS command
 * run, with secrets already masked by the runner — and stack traces on errors.
 */
import type { Logger } from '../util/logger.js';

/** True when the user asked for debug output. */
export function debugEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CAIRN_DEBUG;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/**
 * The CLI's logger: `warn` and `error` always go to `warn` (the Output's warning line);
 * `debug` and `info` only when debugging.
 */
export function cliLogger(warn: (message: string) => void, debug: boolean): Logger {
  const line = (obj: object, msg?: string) => {
    const fields = JSON.stringify(obj);
    return fields === '{}' ? (msg ?? '') : `${msg ?? ''} ${fields}`;
  };
  const verbose = (level: string) =>
    debug
      ? (obj: object, msg?: string) => process.stderr.write(`cairn: ${level}: ${line(obj, msg)}\n`)
      : () => {};
  return {
    debug: verbose('debug'),
    info: verbose('info'),
    warn: (obj, msg) => warn(line(obj, msg)),
    error: (obj, msg) => warn(line(obj, msg)),
  };
}
