import { invalidArgument, invalidState } from '../util/errors.js';
import { faultPoint } from '../util/fault.js';
import { newId } from '../util/names.js';
import { withoutSecrets } from '../util/redact.js';
import { parseWith } from '../util/zod.js';
import { type Engine, failure, lockKey, mustGet, save } from './engine.js';
import { type ForceOptions, forceOptionsSchema } from './options.js';
import { baseFields, type ConnectionInfo, type ConnectionRecord, type HostConnector } from './records.js';
import { assertStatus } from './states.js';
import { Stored } from './stored.js';
import { volumeRef } from './volume.js';

/**
 * An export of a volume to one host. On that host, {@link Connection.attach} turns it into a
 * local block device.
 */
export class Connection extends Stored<ConnectionRecord> {
  /** The volume this connection exports. */
  get volumeId(): string {
    return this.rec.volumeId;
  }
  /** The host the volume is exported to. */
  get host(): string {
    return this.rec.host;
  }
  /** `ro` when exported and attached read-only. */
  get mode(): 'rw' | 'ro' {
    return this.rec.mode;
  }
  /** The local block device while attached, else null. */
  get path(): string | null {
    return this.rec.path;
  }
  /** What the host's connector needs: `{ protocol, data }` (may hold secrets). */
  get info(): ConnectionInfo {
    return structuredClone(this.rec.info);
  }
  /** The connector properties of the host. */
  get connector(): HostConnector {
    return structuredClone(this.rec.connector);
  }

  /**
   * Attaches the volume on this host.
   * @returns the block device path
   * @throws CairnError INVALID_STATE when attached already; INVALID_ARGUMENT when the
   *   connection is for another host
   */
  async attach(): Promise<string> {
    const { engine } = this;
    await engine.locks.withLocks([lockKey('volume', this.volumeId)], async () => {
      let rec = await mustGet(engine, 'connection', this.id);
      this.assertLocal(rec);
      if (rec.status === 'attached')
        throw invalidState(
          `volume ${rec.volumeId} is attached already at ${rec.path} (connection ${rec.id})`,
        );
      assertStatus('connection', rec.id, rec.status, ['connected'], 'attach');
      const connector = engine.connector(rec.info.protocol);
      rec = await save(engine, rec, { status: 'attaching' });
      try {
        const device = await connector.attach(rec.info, { readOnly: rec.mode === 'ro' });
        faultPoint('connection.attach:after-device');
        rec = await save(engine, rec, { status: 'attached', path: device.path, lastError: null });
      } catch (err) {
        this.rec = await save(engine, rec, { status: 'connected', lastError: failure('attach', err) });
        throw err;
      }
      this.rec = rec;
      await setAttachStatus(engine, rec.volumeId);
    });
    return this.rec.path!;
  }

  /**
   * Removes the local device; the volume stays exported to this host.
   * @throws CairnError INVALID_STATE while the device is mounted or held, unless `force`
   */
  async detach(options: ForceOptions = {}): Promise<void> {
    const { force } = parseWith(forceOptionsSchema, options, 'detach options');
    await this.engine.locks.withLocks([lockKey('volume', this.volumeId)], async () => {
      const rec = await mustGet(this.engine, 'connection', this.id);
      this.rec = await detachLocked(this.engine, rec, force);
    });
  }

  /** Makes the attached device show the volume's current size; returns the device's size. */
  async extend(): Promise<number> {
    return this.engine.locks.withLocks([lockKey('volume', this.volumeId)], () => this.rescanLocked());
  }

  /** @internal Rescans the local device; the caller holds the volume's lock. */
  async rescanLocked(): Promise<number> {
    const rec = await mustGet(this.engine, 'connection', this.id);
    this.assertLocal(rec);
    assertStatus('connection', rec.id, rec.status, ['attached'], 'extend');
    try {
      return await this.engine
        .connector(rec.info.protocol)
        .extend(rec.info, { path: rec.path!, type: 'block' });
    } catch (err) {
      this.rec = await save(this.engine, rec, { lastError: failure('extend', err) });
      throw err;
    }
  }

  /**
   * Removes the export (detaching the local device first when attached on this host).
   * Disconnecting a connection that is gone already succeeds.
   */
  async disconnect(options: ForceOptions = {}): Promise<void> {
    const { force } = parseWith(forceOptionsSchema, options, 'disconnect options');
    const { engine } = this;
    await engine.locks.withLocks([lockKey('volume', this.volumeId)], async () => {
      let rec = await engine.store.get('connection', this.id);
      if (!rec) return;
      if (rec.status === 'attached' || rec.status === 'attaching' || rec.status === 'detaching') {
        rec = await detachLocked(engine, rec, force);
      }
      const volume = await mustGet(engine, 'volume', rec.volumeId);
      const backend = engine.backend(rec.backend);
      if (rec.status !== 'disconnecting') rec = await save(engine, rec, { status: 'disconnecting' });
      try {
        await backend.driver.unexportVolume(volumeRef(volume), rec.info, rec.connector);
      } catch (err) {
        this.rec = await save(engine, rec, { status: 'error', lastError: failure('disconnect', err) });
        throw err;
      }
      await engine.store.remove('connection', rec.id);
      await setAttachStatus(engine, rec.volumeId);
    });
  }

  private assertLocal(rec: ConnectionRecord): void {
    if (rec.host !== this.engine.localHost) {
      throw invalidArgument(
        `connection ${rec.id} is for host "${rec.host}"; attach and detach run on that host, this is "${this.engine.localHost}"`,
      );
    }
  }

  /** The record without secrets, unless `{ includeSecrets: true }`. */
  toJSON(opts?: unknown): ConnectionRecord {
    const include =
      typeof opts === 'object' && opts !== null && (opts as { includeSecrets?: boolean }).includeSecrets;
    return include ? this.record : withoutSecrets(this.record);
  }
}

/** Exports volume `volumeId` to a host; the caller holds the volume's lock. @internal */
export async function connectLocked(
  engine: Engine,
  volumeId: string,
  connector: HostConnector,
  mode: 'rw' | 'ro',
): Promise<ConnectionRecord> {
  let volume = await mustGet(engine, 'volume', volumeId);
  assertStatus('volume', volumeId, volume.status, ['available', 'in-use'], 'connect');
  const backend = engine.backend(volume.backend);
  const existing = await engine.store.list('connection', { volumeId });
  const sameHost = existing.find((c) => c.host === connector.host);
  if (sameHost) {
    const where = sameHost.path ? ` at ${sameHost.path}` : '';
    throw invalidState(
      `volume ${volumeId} is already ${sameHost.status} on host ${connector.host}${where} (connection ${sameHost.id})`,
    );
  }
  if (existing.length > 0 && !(volume.multiattach && backend.capabilities.multiAttach)) {
    throw invalidState(
      `volume ${volumeId} is already connected to ${existing.map((c) => c.host).join(', ')} and is not multi-attach`,
    );
  }
  backend.driver.validateConnector(connector);
  const record: ConnectionRecord = {
    kind: 'connection',
    ...baseFields(newId(), backend.name),
    status: 'connecting',
    volumeId,
    host: connector.host,
    mode,
    connector,
    info: { protocol: 'none', data: {} },
    path: null,
  };
  let stored = await engine.store.put(record);
  faultPoint('connection.connect:after-record');
  try {
    const info = await backend.driver.exportVolume(volumeRef(volume), connector, mode);
    stored = await save(engine, stored, { status: 'connected', info });
  } catch (err) {
    await engine.store.remove('connection', record.id);
    throw err;
  }
  if (volume.status !== 'in-use') volume = await save(engine, volume, { status: 'in-use' });
  return stored;
}

async function detachLocked(
  engine: Engine,
  rec: ConnectionRecord,
  force: boolean,
): Promise<ConnectionRecord> {
  if (rec.host !== engine.localHost) {
    throw invalidArgument(`connection ${rec.id} is for host "${rec.host}"; detach it on that host`);
  }
  if (rec.status === 'connected') return rec;
  assertStatus(
    'connection',
    rec.id,
    rec.status,
    force ? ['attached', 'attaching', 'detaching', 'error'] : ['attached', 'detaching'],
    'detach',
  );
  const connector = engine.connector(rec.info.protocol);
  const previous = rec.status;
  let next = await save(engine, rec, { status: 'detaching' });
  try {
    // Without a recorded path (a process died between attaching and saving the device), ask
    // the system which devices this export is attached as.
    const devices = rec.path
      ? [{ path: rec.path, type: 'block' as const }]
      : await connector.findDevices(rec.info);
    for (const device of devices) await connector.detach(rec.info, device, { force });
  } catch (err) {
    await save(engine, next, {
      status: previous === 'attached' ? 'attached' : 'error',
      lastError: failure('detach', err),
    });
    throw err;
  }
  next = await save(engine, next, { status: 'connected', path: null });
  await setAttachStatus(engine, rec.volumeId);
  return next;
}

/** Keeps the volume's `attachStatus` and `in-use` status true to its connections. @internal */
export async function setAttachStatus(engine: Engine, volumeId: string): Promise<void> {
  const volume = await engine.store.get('volume', volumeId);
  if (!volume) return;
  const connections = await engine.store.list('connection', { volumeId });
  const attachStatus = connections.some((c) => c.status === 'attached') ? 'attached' : 'detached';
  let status = volume.status;
  if (status === 'in-use' && connections.length === 0) status = 'available';
  if (status === 'available' && connections.length > 0) status = 'in-use';
  if (attachStatus !== volume.attachStatus || status !== volume.status)
    await save(engine, volume, { attachStatus, status });
}
