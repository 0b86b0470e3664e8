import { invalidState } from '../util/errors.js';
import type { ConnectionStatus, RecordKind, SnapshotStatus, VolumeStatus } from './records.js';

// Allowed transitions. A state missing from a list is refused, so an operation on an object in
// the wrong state fails before it touches the backend.
const VOLUME: Record<VolumeStatus, readonly VolumeStatus[]> = {
  creating: ['available', 'error', 'deleting'], // deleting: forced, after a crash mid-create
  available: ['in-use', 'extending', 'reverting', 'deleting', 'error'],
  'in-use': ['available', 'extending', 'error'],
  extending: ['available', 'in-use', 'error', 'deleting'], // deleting: forced, after a crash
  reverting: ['available', 'error', 'deleting'], // deleting: forced, after a crash
  deleting: ['error_deleting'],
  error: ['deleting', 'available', 'reverting'], // reverting: retrying a failed revert
  error_deleting: ['deleting'],
};

const SNAPSHOT: Record<SnapshotStatus, readonly SnapshotStatus[]> = {
  creating: ['available', 'error'],
  available: ['deleting', 'error'], // error: found missing on the backend
  deleting: ['error_deleting'],
  error: ['deleting'],
  error_deleting: ['deleting'],
};

const CONNECTION: Record<ConnectionStatus, readonly ConnectionStatus[]> = {
  connecting: ['connected', 'error', 'disconnecting'],
  connected: ['attaching', 'disconnecting', 'error'],
  attaching: ['attached', 'connected', 'detaching', 'error'],
  attached: ['detaching', 'error'],
  detaching: ['connected', 'attached', 'error'],
  disconnecting: ['error'],
  error: ['disconnecting', 'detaching', 'connected'],
};

const TABLES = { volume: VOLUME, snapshot: SNAPSHOT, connection: CONNECTION } as const;

/** Throws INVALID_STATE unless `kind` may go from `from` to `to`. */
export function assertTransition(kind: RecordKind, id: string, from: string, to: string): void {
  const allowed = (TABLES[kind] as Record<string, readonly string[]>)[from] ?? [];
  if (!allowed.includes(to)) {
    throw invalidState(`${kind} ${id} is ${from}; it cannot become ${to}`, {
      details: { kind, id, status: from, wanted: to },
    });
  }
}

/** Throws INVALID_STATE unless the object is in one of `allowed` states, naming the operation. */
export function assertStatus(
  kind: RecordKind,
  id: string,
  status: string,
  allowed: readonly string[],
  operation: string,
): void {
  if (!allowed.includes(status)) {
    throw invalidState(
      `cannot ${operation} ${kind} ${id}: it is ${status} (allowed: ${allowed.join(', ')})`,
      {
        details: { kind, id, status, operation },
      },
    );
  }
}
