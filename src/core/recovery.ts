import { isCairnError } from '../util/errors.js';
import type { Backend } from './backend.js';
import { setAttachStatus } from './connection.js';
import { type Engine, failure, lockKey, save } from './engine.js';
import type { AnyRecord, ConnectionRecord, RecordKind, SnapshotRecord, VolumeRecord } from './records.js';
import { snapshotRef } from './snapshot.js';
import { volumeRef } from './volume.js';

/** Statuses an operation passes through and never rests in. */
export const TRANSITIONAL: { readonly [K in RecordKind]: readonly string[] } = {
  volume: ['creating', 'extending', 'reverting', 'deleting'],
  snapshot: ['creating', 'deleting'],
  connection: ['connecting', 'attaching', 'detaching', 'disconnecting'],
};

/** What recovery did with one object left in a transitional state. */
export interface RecoveryAction {
  kind: RecordKind;
  id: string;
  /** The status it was found in. */
  found: string;
  /** `rolled back` (undone and removed), `resumed` (finished), `restored` (back to a resting state), or `error`. */
  outcome: 'rolled back' | 'resumed' | 'restored' | 'error';
  message: string;
}

/**
 * Finds the objects of `backend` that an interrupted operation left in a transitional state and
 * rolls them back, finishes them, or marks them `error` with the reason. An operation holds its
 * object's lock from start to end, so an object whose lock can be taken at once has no live
 * operation: whoever left it there died. Objects whose lock is held are left alone.
 */
export async function recoverBackend(engine: Engine, backend: Backend): Promise<RecoveryAction[]> {
  const actions: RecoveryAction[] = [];
  for (const kind of ['connection', 'snapshot', 'volume'] as const) {
    for (const status of TRANSITIONAL[kind]) {
      for (const record of await engine.store.list(kind, { backend: backend.name, status })) {
        const action = await recoverOne(engine, backend, record);
        if (action) actions.push(action);
      }
    }
  }
  for (const a of actions)
    engine.logger.warn({ ...a, backend: backend.name }, 'recovered an interrupted operation');
  return actions;
}

async function recoverOne(engine: Engine, backend: Backend, seen: AnyRecord): Promise<RecoveryAction | null> {
  const keys =
    seen.kind === 'volume'
      ? [lockKey('volume', seen.id)]
      : [lockKey('volume', seen.volumeId), lockKey(seen.kind, seen.id)];
  try {
    return await engine.locks.withLocks(
      keys,
      async () => {
        const record = await engine.store.get(seen.kind, seen.id);
        if (!record || !TRANSITIONAL[record.kind].includes(record.status)) return null; // finished meanwhile
        if (
          record.kind === 'connection' &&
          record.host !== engine.localHost &&
          ['attaching', 'detaching'].includes(record.status)
        ) {
          return null; // only the connection's own host can see its devices
        }
        const act = (outcome: RecoveryAction['outcome'], message: string): RecoveryAction => ({
          kind: record.kind,
          id: record.id,
          found: record.status,
          outcome,
          message,
        });
        try {
          return await repair(engine, backend, record, act);
        } catch (err) {
          const message = `interrupted while ${record.status}; recovery failed: ${(err as Error).message}`;
          await markError(engine, record, message);
          return act('error', message);
        }
      },
      { timeoutMs: 0 },
    );
  } catch (err) {
    if (isCairnError(err, 'BUSY')) return null; // a live operation holds it
    throw err;
  }
}

type Act = (outcome: RecoveryAction['outcome'], message: string) => RecoveryAction;

async function repair(
  engine: Engine,
  backend: Backend,
  record: AnyRecord,
  act: Act,
): Promise<RecoveryAction> {
  const { driver } = backend;
  switch (record.kind) {
    case 'volume':
      return repairVolume(engine, backend, record, act);
    case 'snapshot':
      await driver.deleteSnapshot(snapshotRef(record));
      await engine.store.remove('snapshot', record.id);
      return record.status === 'creating'
        ? act('rolled back', 'snapshot creation was interrupted; its copy was removed')
        : act('resumed', 'snapshot deletion was interrupted and has been finished');
    case 'connection':
      return repairConnection(engine, backend, record, act);
  }
}

async function repairVolume(
  engine: Engine,
  backend: Backend,
  record: VolumeRecord,
  act: Act,
): Promise<RecoveryAction> {
  if (record.status === 'extending') {
    const actual = (await backend.driver.inventory()).volumes.get(record.id);
    const connected = (await engine.store.list('connection', { volumeId: record.id })).length > 0;
    const size = actual !== undefined && actual >= record.size ? actual : record.size;
    const message = `extend was interrupted; the volume is ${size} bytes`;
    await save(engine, record, {
      status: connected ? 'in-use' : 'available',
      size,
      lastError: failure('extend', new Error(message)),
    });
    return act('restored', message);
  }
  if (record.status === 'reverting') {
    // A half-done rollback leaves data that is neither the old nor the snapshot's: say so, and
    // let the user revert again (allowed from `error`).
    const message = 'revert to a snapshot was interrupted; the data may be partly reverted: revert again';
    await save(engine, record, { status: 'error', lastError: failure('revert', new Error(message)) });
    return act('error', message);
  }
  await backend.driver.deleteVolume(volumeRef(record));
  await engine.store.remove('volume', record.id);
  return record.status === 'creating'
    ? act('rolled back', 'volume creation was interrupted; what it made was removed')
    : act('resumed', 'volume deletion was interrupted and has been finished');
}

async function repairConnection(
  engine: Engine,
  backend: Backend,
  record: ConnectionRecord,
  act: Act,
): Promise<RecoveryAction> {
  if (record.status === 'attaching' || record.status === 'detaching') {
    const connector = engine.connector(record.info.protocol);
    const devices = await connector.findDevices(record.info);
    for (const device of devices) await connector.detach(record.info, device, { force: true });
    await save(engine, record, { status: 'connected', path: null });
    await setAttachStatus(engine, record.volumeId);
    return act(
      'restored',
      `${record.status === 'attaching' ? 'attach' : 'detach'} was interrupted; ${devices.length} device(s) detached, the volume stays connected`,
    );
  }
  const volume = await engine.store.get('volume', record.volumeId);
  // Also with no info yet (`none`): the export may have been made before the info was saved.
  if (volume) await backend.driver.unexportVolume(volumeRef(volume), record.info, record.connector);
  await engine.store.remove('connection', record.id);
  await setAttachStatus(engine, record.volumeId);
  return record.status === 'connecting'
    ? act('rolled back', 'connect was interrupted; the export was removed')
    : act('resumed', 'disconnect was interrupted and has been finished');
}

async function markError(engine: Engine, record: AnyRecord, message: string): Promise<void> {
  const status =
    record.kind === 'volume' && record.status === 'deleting'
      ? 'error_deleting'
      : record.kind === 'snapshot' && record.status === 'deleting'
        ? 'error_deleting'
        : 'error';
  await save(
    engine,
    record as SnapshotRecord,
    { status, lastError: failure('recover', new Error(message)) } as Partial<SnapshotRecord>,
  ).catch((err) =>
    engine.logger.error({ err: (err as Error).message, id: record.id }, 'could not mark an object error'),
  );
}
