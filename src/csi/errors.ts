import { type ServiceError, status } from '@grpc/grpc-js';
import { CairnError, ErrorCode, errorMessage } from '../util/errors.js';

/** The one place a Cairn error code becomes a gRPC status code. */
const STATUS_OF: Record<ErrorCode, status> = {
  [ErrorCode.InvalidArgument]: status.INVALID_ARGUMENT,
  [ErrorCode.NotFound]: status.NOT_FOUND,
  [ErrorCode.AlreadyExists]: status.ALREADY_EXISTS,
  [ErrorCode.InvalidState]: status.FAILED_PRECONDITION,
  [ErrorCode.InsufficientCapacity]: status.RESOURCE_EXHAUSTED,
  [ErrorCode.BackendFailure]: status.INTERNAL,
  [ErrorCode.StateStoreFailure]: status.UNAVAILABLE,
  [ErrorCode.Conflict]: status.ABORTED,
  [ErrorCode.Busy]: status.ABORTED,
  [ErrorCode.Timeout]: status.DEADLINE_EXCEEDED,
  [ErrorCode.Unsupported]: status.UNIMPLEMENTED,
  [ErrorCode.Internal]: status.INTERNAL,
};

/** A gRPC error with an explicit status, for answers the CSI spec prescribes. */
export function grpcError(code: status, message: string): ServiceError {
  return Object.assign(new Error(message), { code, details: message, metadata: undefined as never });
}

/** Turns anything thrown by a handler into a gRPC error with the right status code. */
export function toGrpcError(err: unknown): ServiceError {
  if (
    typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    typeof (err as ServiceError).code === 'number'
  ) {
    return err as ServiceError;
  }
  const code = err instanceof CairnError ? STATUS_OF[err.code] : status.INTERNAL;
  return grpcError(code, errorMessage(err));
}
