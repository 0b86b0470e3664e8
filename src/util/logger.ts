/**
 * The logging interface Cairn writes to. It is pino's calling convention
 * (`log.info({ field }, 'message')`), so a pino logger can be passed as it is.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = () => {};

/** A logger that drops everything: the default, so a library never prints on its own. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
