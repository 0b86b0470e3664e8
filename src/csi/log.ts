import type { Logger } from '../util/logger.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * The plugin's logger: one JSON object per line on stderr (`{"time","level","msg",...fields}`),
 * as a CO's log collector expects from a container. Lines below `level` are dropped.
 * Error objects in fields are written as their message.
 */
export function jsonLogger(
  level: LogLevel,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  const at =
    (lvl: LogLevel) =>
    (obj: object, msg?: string): void => {
      if (RANK[lvl] < RANK[level]) return;
      const fields: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(obj)) fields[k] = v instanceof Error ? v.message : v;
      write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg: msg ?? '', ...fields })}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
