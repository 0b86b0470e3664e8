import { status } from '@grpc/grpc-js';
import { grpcError } from '../errors.js';
import { invalidField } from '../rpc.js';

/** What lists are ordered by (the state store's order): creation time, then id. */
export interface Position {
  createdAt: string;
  id: string;
}

const before = (a: Position, b: Position) =>
  a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id);

/**
 * A page token is the position of the last entry a page returned, so the next page starts
 * right after it whatever was created or deleted in between: objects created later sort after
 * it, and a deleted one shifts nothing. A token is opaque to the CO (base64url JSON).
 */
export function encodeToken(p: Position): string {
  return Buffer.from(JSON.stringify({ t: p.createdAt, i: p.id }), 'utf8').toString('base64url');
}

/** @throws ABORTED (the spec's answer to an invalid starting_token) */
export function decodeToken(token: string, field: string): Position {
  const bad = () =>
    grpcError(
      status.ABORTED,
      `${field}: ${JSON.stringify(token.slice(0, 64))} is not a token this plugin issued; start again without one`,
    );
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  const p = parsed as { t?: unknown; i?: unknown };
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.t !== 'string' ||
    typeof p.i !== 'string' ||
    !p.t ||
    !p.i
  )
    throw bad();
  return { createdAt: p.t, id: p.i };
}

/**
 * One page of `items` (sorted by position): those after `starting_token`, at most
 * `max_entries` (0 = all), and the token of the next page ('' on the last).
 */
export function paginate<T extends Position>(
  items: readonly T[],
  maxEntries: number,
  startingToken: string,
): { page: T[]; nextToken: string } {
  if (!Number.isInteger(maxEntries) || maxEntries < 0)
    throw invalidField('max_entries', `must not be negative (got ${maxEntries})`);
  const start = startingToken ? decodeToken(startingToken, 'starting_token') : null;
  const rest = start ? items.filter((x) => before(start, x)) : [...items];
  if (maxEntries === 0 || rest.length <= maxEntries) return { page: rest, nextToken: '' };
  const page = rest.slice(0, maxEntries);
  return { page, nextToken: encodeToken(page[page.length - 1]!) };
}
