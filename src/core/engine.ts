import type { Connector } from '../connectors/spi.js';
import type { CommandRunner } from '../exec/runner.js';
import type { StateStore } from '../state/spi.js';
import { errorMessage, notFound } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { Backend } from './backend.js';
import type { LockManager } from './locks.js';
import type { AnyRecord, HostConnector, LastError, RecordKind, RecordOf } from './records.js';
import { assertTransition } from './states.js';

/**
 * What the object classes (Backend, Volume, Snapshot, Connection) need from their context.
 * @internal
 */
export interface Engine {
  readonly store: StateStore;
  readonly locks: LockManager;
  readonly logger: Logger;
  readonly runner: CommandRunner;
  /** This host's name, as connections record it. */
  readonly localHost: string;
  backend(name: string): Backend;
  forgetBackend(name: string): void;
  connector(protocol: string): Connector;
  hostConnector(opts?: { multipath?: boolean }): Promise<HostConnector>;
}

/** Lock key of an object. */
export const lockKey = (kind: RecordKind, id: string) => `${kind}:${id}`;
/** Lock key of a name on a backend, taken while an object with that name is created. */
export const nameKey = (backend: string, kind: RecordKind, name: string) => `name:${backend}:${kind}:${name}`;

/** Reads a record, or throws NOT_FOUND. */
export async function mustGet<K extends RecordKind>(
  engine: Engine,
  kind: K,
  id: string,
): Promise<RecordOf<K>> {
  const record = await engine.store.get(kind, id);
  if (!record) throw notFound(`${kind} ${id} not found`, { details: { kind, id } });
  return record;
}

/**
 * Writes `changes` onto `record` (optimistically) and returns the stored record. A status
 * change is checked against the life-cycle table first, so no code path can make a transition
 * the table does not allow.
 */
export async function save<R extends AnyRecord>(engine: Engine, record: R, changes: Partial<R>): Promise<R> {
  if (changes.status !== undefined && changes.status !== record.status) {
    assertTransition(record.kind, record.id, record.status, changes.status);
  }
  return engine.store.put({ ...record, ...changes, updatedAt: new Date().toISOString() });
}

/** A {@link LastError} for a failed operation. */
export function failure(operation: string, err: unknown): NonNullable<LastError> {
  return { operation, message: errorMessage(err), at: new Date().toISOString() };
}

/** Runs a best-effort clean-up step; returns its error instead of throwing it. */
export async function attempt(engine: Engine, what: string, fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    engine.logger.warn({ err: errorMessage(err) }, `${what} failed`);
    return err;
  }
}
