/**
 * What every CSI handler shares: turning a promise-returning function into a grpc-js unary
 * handler with one error mapping (src/csi/errors.ts) and one log line per call, checks of
 * required fields that name the field, and a request summary that never carries secrets.
 */
import {
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { grpcError, toGrpcError } from './errors.js';
import type { ServiceHandlers } from './proto.js';

/** A CSI method implemented as an async function of the decoded request. */
export type UnaryFn<Req, Res> = (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>;

/**
 * A grpc-js unary handler running `fn`: its result is the response; anything it throws becomes
 * a gRPC status through `toGrpcError`. Each call is logged once (method, duration, status) with
 * the request summarised by {@link redact}: secrets and mount flags never reach the log.
 * `quiet` logs successful calls at debug level only.
 */
export function unary<Req, Res>(
  method: string,
  logger: Logger,
  fn: UnaryFn<Req, Res>,
  opts: { quiet?: boolean } = {},
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    const started = performance.now();
    const request = call.request;
    logger.debug({ method, request: redact(request) }, 'csi call');
    fn(request, call).then(
      (response) => {
        const ms = Math.round(performance.now() - started);
        // Calls a CO repeats all the time (Probe, capabilities, lists) log only when debugging.
        (opts.quiet ? logger.debug : logger.info).call(logger, { method, ms, code: 'OK' }, 'csi call done');
        callback(null, response);
      },
      (err: unknown) => {
        const e = toGrpcError(err);
        const ms = Math.round(performance.now() - started);
        const code = status[e.code] ?? String(e.code);
        const fields = { method, ms, code, message: e.details ?? errorMessage(err) };
        // Expected answers (not found, already exists, busy…) are info; internal failures warn.
        if (e.code === status.INTERNAL || e.code === status.UNKNOWN) {
          logger.warn({ ...fields, request: redact(request) }, 'csi call failed');
        } else {
          logger.info(fields, 'csi call refused');
        }
        callback(e);
      },
    );
  };
}

/** Handlers answering every method of `service` with UNIMPLEMENTED (the spec's "call not implemented"). */
export function unimplementedService(
  name: string,
  service: ServiceDefinition,
  why = `${name} is not supported by this plugin`,
): ServiceHandlers {
  const handlers: ServiceHandlers = {};
  for (const [method, def] of Object.entries(service)) {
    const message = `${name}.${method}: ${why}`;
    handlers[method] = def.responseStream
      ? (call: ServerWritableStream<unknown, unknown>) => {
          call.emit('error', grpcError(status.UNIMPLEMENTED, message));
        }
      : (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
          callback(grpcError(status.UNIMPLEMENTED, message));
        };
  }
  return handlers;
}

/** An INVALID_ARGUMENT status naming `field`. */
export function invalidField(field: string, why: string) {
  return grpcError(status.INVALID_ARGUMENT, `${field}: ${why}`);
}

/** Returns `value` when it is a non-empty string; else INVALID_ARGUMENT naming `field`. */
export function requireString(value: string | undefined | null, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidField(field, 'is required');
  return value;
}

/** Returns `value` when present; else INVALID_ARGUMENT naming `field`. */
export function requireMessage<T>(value: T | null | undefined, field: string): T {
  if (value === null || value === undefined) throw invalidField(field, 'is required');
  return value;
}

/** Returns `list` when it has at least one element; else INVALID_ARGUMENT naming `field`. */
export function requireList<T>(list: T[] | undefined | null, field: string): T[] {
  if (!Array.isArray(list) || list.length === 0) throw invalidField(field, 'is required (at least one)');
  return list;
}

const HIDDEN_FIELDS = new Set(['secrets', 'mount_flags']);

/**
 * A copy of a request fit for a log: `secrets` maps and `mount_flags` (which the spec says may
 * hold sensitive values) are replaced by their key names or a count.
 */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!HIDDEN_FIELDS.has(k)) out[k] = redact(v);
    else if (Array.isArray(v)) out[k] = `(${v.length} hidden)`;
    else if (v && typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length > 0) out[k] = `(hidden: ${keys.join(', ')})`;
    }
  }
  return out;
}
