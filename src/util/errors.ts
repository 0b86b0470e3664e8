/**
 * One error taxonomy for the whole project. Every error Cairn throws on purpose is a
 * {@link CairnError} with a stable {@link ErrorCode}; front ends map codes to exit codes or
 * gRPC status codes in one place each, never by parsing messages.
 */

/** Stable error codes. Never renamed: scripts and front ends depend on them. */
export const ErrorCode = {
  InvalidArgument: 'INVALID_ARGUMENT',
  NotFound: 'NOT_FOUND',
  AlreadyExists: 'ALREADY_EXISTS',
  InvalidState: 'INVALID_STATE',
  InsufficientCapacity: 'INSUFFICIENT_CAPACITY',
  BackendFailure: 'BACKEND_FAILURE',
  StateStoreFailure: 'STATE_STORE_FAILURE',
  Conflict: 'CONFLICT',
  Busy: 'BUSY',
  Timeout: 'TIMEOUT',
  Unsupported: 'UNSUPPORTED',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error Cairn raises deliberately. */
export class CairnError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** Optional structured details (never secrets). */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CairnError';
    this.code = code;
    this.details = options?.details;
  }

  /** A JSON shape for `--json` output and logs. */
  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message };
  }
}

const make =
  (code: ErrorCode) =>
  (message: string, options?: { cause?: unknown; details?: Record<string, unknown> }): CairnError =>
    new CairnError(code, message, options);

export const invalidArgument = make(ErrorCode.InvalidArgument);
export const notFound = make(ErrorCode.NotFound);
export const alreadyExists = make(ErrorCode.AlreadyExists);
export const invalidState = make(ErrorCode.InvalidState);
export const insufficientCapacity = make(ErrorCode.InsufficientCapacity);
export const backendFailure = make(ErrorCode.BackendFailure);
export const stateStoreFailure = make(ErrorCode.StateStoreFailure);
export const conflict = make(ErrorCode.Conflict);
export const busy = make(ErrorCode.Busy);
export const timeout = make(ErrorCode.Timeout);
export const unsupported = make(ErrorCode.Unsupported);

/** True when `err` is a CairnError, optionally with the given code. */
export function isCairnError(err: unknown, code?: ErrorCode): err is CairnError {
  return err instanceof CairnError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a CairnError, keeping CairnErrors as they are. */
export function toCairnError(err: unknown, fallback: ErrorCode = ErrorCode.Internal): CairnError {
  if (err instanceof CairnError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CairnError(fallback, message, { cause: err });
}

/** A short, human message for any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
