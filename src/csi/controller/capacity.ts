import { status } from '@grpc/grpc-js';
import { grpcError } from '../errors.js';
import type { CapacityRange } from '../proto.js';
import { invalidField } from '../rpc.js';

/** The size of a new empty volume when the CO gives no capacity range. */
export const DEFAULT_VOLUME_SIZE = 1024 ** 3;

/** A capacity range in bytes; 0 means "not given". */
export interface Range {
  required: number;
  limit: number;
}

function bytes(value: string | number | undefined, field: string): number {
  const text = String(value ?? '0');
  if (!/^-?\d+$/.test(text))
    throw invalidField(field, `${JSON.stringify(text)} is not a whole number of bytes`);
  const n = BigInt(text);
  if (n < 0n) throw invalidField(field, `must not be negative (got ${text})`);
  if (n > BigInt(Number.MAX_SAFE_INTEGER))
    throw grpcError(
      status.OUT_OF_RANGE,
      `${field}: ${text} bytes is more than this plugin supports (2^53-1)`,
    );
  return Number(n);
}

/**
 * Reads a CapacityRange (null = none given).
 * @throws INVALID_ARGUMENT for negative values or a limit below the requirement
 */
export function readRange(range: CapacityRange | null, field: string): Range {
  if (!range) return { required: 0, limit: 0 };
  const required = bytes(range.required_bytes, `${field}.required_bytes`);
  const limit = bytes(range.limit_bytes, `${field}.limit_bytes`);
  if (limit > 0 && required > limit)
    throw invalidField(field, `required_bytes (${required}) is larger than limit_bytes (${limit})`);
  return { required, limit };
}

/** True when `size` satisfies the range. */
export function fits(size: number, r: Range): boolean {
  return size >= r.required && (r.limit === 0 || size <= r.limit);
}

/**
 * The size of a new volume: at least `required` and at least `minimum` (the source's size, or
 * 1 when empty), `fallback` when nothing is required, rounded up to `alignment`, and never more
 * than `limit`. When rounding up would pass the limit, the largest aligned size under it is
 * taken if it still satisfies the rest.
 * @throws OUT_OF_RANGE when no aligned size fits
 */
export function chooseSize(
  r: Range,
  alignment: number,
  minimum: number,
  fallback: number,
  what: string,
): number {
  if (r.limit > 0 && r.limit < minimum)
    throw grpcError(
      status.OUT_OF_RANGE,
      `capacity_range.limit_bytes (${r.limit}) is smaller than ${what} (${minimum} bytes)`,
    );
  if (r.required > 0 && r.required < minimum)
    throw grpcError(
      status.OUT_OF_RANGE,
      `capacity_range.required_bytes (${r.required}) is smaller than ${what} (${minimum} bytes); a volume cannot be smaller than its source`,
    );
  let wanted = Math.max(r.required, minimum);
  if (r.required === 0) wanted = Math.max(minimum, r.limit > 0 ? Math.min(fallback, r.limit) : fallback);
  const up = Math.ceil(wanted / alignment) * alignment;
  if (r.limit === 0 || up <= r.limit) return up;
  const down = Math.floor(r.limit / alignment) * alignment;
  if (down > 0 && down >= Math.max(r.required, minimum)) return down;
  throw grpcError(
    status.OUT_OF_RANGE,
    `capacity_range: no size between ${Math.max(r.required, minimum)} and ${r.limit} bytes is a multiple of this backend's allocation unit (${alignment} bytes)`,
  );
}
