import type { VolumeRef } from '../drivers/spi.js';
import { alreadyExists, invalidArgument, invalidState, unsupported } from '../util/errors.js';
import { faultPoint } from '../util/fault.js';
import { newId } from '../util/names.js';
import { parseSize } from '../util/size.js';
import { parseWith } from '../util/zod.js';
import { Connection, connectLocked } from './connection.js';
import { attempt, failure, lockKey, mustGet, nameKey, save } from './engine.js';
import {
  type ConnectOptions,
  type CreateSnapshotOptions,
  connectOptionsSchema,
  type DerivedVolumeOptions,
  type ForceOptions,
  forceOptionsSchema,
  parseCreateSnapshot,
  parseDerivedVolume,
} from './options.js';
import {
  baseFields,
  type HostConnector,
  hostConnectorSchema,
  type SnapshotRecord,
  type VolumeRecord,
} from './records.js';
import { Snapshot, snapshotRef } from './snapshot.js';
import { assertStatus } from './states.js';
import { Stored } from './stored.js';

/** Driver view of a volume record. */
export const volumeRef = (r: VolumeRecord): VolumeRef => ({
  id: r.id,
  name: r.name,
  size: r.size,
  driverData: r.driverData,
});

/**
 * A volume: a block device's worth of storage on a backend. Objects are views of the state
 * store: every operation re-reads the record under the volume's lock, so two processes
 * working on the same volume take turns.
 * @example
 * const vol = await backend.createVolume({ size: '1GiB' });
 * const att = await vol.attach();           // e.g. /dev/loop3
 * await vol.detach();
 * await vol.delete();
 */
export class Volume extends Stored<VolumeRecord> {
  /** Size in bytes. */
  get size(): number {
    return this.rec.size;
  }
  /** `attached` while at least one connection has a local device. */
  get attachStatus(): VolumeRecord['attachStatus'] {
    return this.rec.attachStatus;
  }
  /** Backend-specific options given at creation (a copy). */
  get extraSpecs(): Record<string, string> {
    return { ...this.rec.extraSpecs };
  }
  /** The volume this one was cloned from, or null. */
  get sourceVolumeId(): string | null {
    return this.rec.sourceVolumeId;
  }
  /** The snapshot this volume was made from, or null. */
  get sourceSnapshotId(): string | null {
    return this.rec.sourceSnapshotId;
  }

  /** Snapshots of this volume, oldest first. */
  async snapshots(): Promise<Snapshot[]> {
    const records = await this.engine.store.list('snapshot', { volumeId: this.id });
    return records.map((r) => new Snapshot(this.engine, r));
  }

  /** Connections (exports to hosts) of this volume. */
  async connections(): Promise<Connection[]> {
    const records = await this.engine.store.list('connection', { volumeId: this.id });
    return records.map((r) => new Connection(this.engine, r));
  }

  /**
   * A new volume with this volume's data, on the same backend.
   * @example const copy = await vol.clone({ name: 'copy', onProgress: (f) => console.log(f) });
   */
  async clone(options: DerivedVolumeOptions = {}): Promise<Volume> {
    const o = parseDerivedVolume(options);
    const backend = this.engine.backend(this.rec.backend);
    let source = this.rec;
    return backend.createFrom(
      { ...o, sourceVolumeId: this.id },
      {
        locks: [lockKey('volume', this.id)],
        check: async (requested) => {
          source = await mustGet(this.engine, 'volume', this.id);
          assertStatus('volume', this.id, source.status, ['available', 'in-use'], 'clone');
          return sizeFromSource(requested, source.size, 'source volume');
        },
        make: (ref, onProgress) => backend.driver.cloneVolume(ref, volumeRef(source), onProgress),
        onProgress: o.onProgress,
      },
    );
  }

  /**
   * Takes a snapshot: a point-in-time copy that later writes to the volume don't change.
   * @throws CairnError INVALID_STATE unless the volume is available or in use
   */
  async createSnapshot(options: CreateSnapshotOptions = {}): Promise<Snapshot> {
    const o = parseCreateSnapshot(options);
    const { engine } = this;
    const backend = engine.backend(this.rec.backend);
    if (!backend.capabilities.snapshots)
      throw unsupported(`backend ${backend.name} does not support snapshots`);
    const id = o.id ?? newId();
    const keys = [lockKey('volume', this.id), lockKey('snapshot', id)];
    if (o.name) keys.push(nameKey(backend.name, 'snapshot', o.name));
    return engine.locks.withLocks(keys, async () => {
      const volume = await mustGet(engine, 'volume', this.id);
      assertStatus('volume', this.id, volume.status, ['available', 'in-use'], 'snapshot');
      if (await engine.store.get('snapshot', id)) throw alreadyExists(`snapshot ${id} already exists`);
      const record: SnapshotRecord = {
        kind: 'snapshot',
        ...baseFields(id, backend.name),
        name: o.name ?? null,
        description: o.description ?? null,
        metadata: o.metadata ?? {},
        status: 'creating',
        volumeId: volume.id,
        size: volume.size,
      };
      let stored = await engine.store.put(record);
      faultPoint('snapshot.create:after-record');
      const ref = { id, name: record.name, volumeId: volume.id, size: volume.size, driverData: {} };
      try {
        const update = await backend.driver.createSnapshot(ref, volumeRef(volume));
        stored = await save(engine, stored, { status: 'available', driverData: update?.driverData ?? {} });
      } catch (err) {
        const cleanup = await attempt(engine, `cleaning up snapshot ${id}`, () =>
          backend.driver.deleteSnapshot(ref),
        );
        if (cleanup === undefined) await engine.store.remove('snapshot', id);
        else await save(engine, stored, { status: 'error', lastError: failure('create', err) });
        throw err;
      }
      engine.logger.info({ volume: this.id, snapshot: id }, 'snapshot created');
      return new Snapshot(engine, stored);
    });
  }

  /**
   * Grows the volume to `newSize` (rounded up to the backend's alignment). Local devices of
   * attached connections on this host are rescanned, so they show the new size.
   * Growing to the current size does nothing; shrinking is refused.
   */
  async extend(newSize: number | bigint | string): Promise<this> {
    const { engine } = this;
    const backend = engine.backend(this.rec.backend);
    const wanted = parseSize(newSize, 'newSize');
    const size = Math.ceil(wanted / backend.capabilities.sizeAlignment) * backend.capabilities.sizeAlignment;
    await engine.locks.withLocks([lockKey('volume', this.id)], async () => {
      let rec = await mustGet(engine, 'volume', this.id);
      assertStatus('volume', this.id, rec.status, ['available', 'in-use'], 'extend');
      if (size < rec.size)
        throw invalidArgument(
          `newSize: ${wanted} bytes is smaller than the volume (${rec.size} bytes); volumes only grow`,
        );
      if (size === rec.size) {
        this.rec = rec;
        return;
      }
      if (rec.status === 'in-use' && !backend.capabilities.onlineExtend) {
        throw unsupported(`backend ${backend.name} cannot extend a volume while it is connected`);
      }
      const previous = rec.status;
      rec = await save(engine, rec, { status: 'extending' });
      faultPoint('volume.extend:after-status');
      try {
        const update = await backend.driver.extendVolume(volumeRef(rec), size);
        faultPoint('volume.extend:after-driver');
        rec = await save(engine, rec, {
          status: previous,
          size: update?.size ?? size,
          driverData: update?.driverData ?? rec.driverData,
          lastError: null,
        });
      } catch (err) {
        this.rec = await save(engine, rec, { status: previous, lastError: failure('extend', err) });
        throw err;
      }
      this.rec = rec;
      for (const c of await engine.store.list('connection', { volumeId: this.id, host: engine.localHost })) {
        if (c.status === 'attached') await new Connection(engine, c).rescanLocked();
      }
    });
    return this;
  }

  /**
   * Rolls the volume's data back to one of its snapshots, in place. The volume must be detached
   * (`available`), or in `error` after a failed revert (to retry it); it keeps its size. The
   * snapshot stays. A revert that fails half-way leaves the volume `error`: revert again.
   * @throws CairnError UNSUPPORTED when the backend cannot revert, INVALID_STATE when the volume
   *   is connected or the snapshot is not available, INVALID_ARGUMENT for another volume's snapshot
   */
  async revertToSnapshot(snapshot: Snapshot | string): Promise<this> {
    const { engine } = this;
    const backend = engine.backend(this.rec.backend);
    const snapshotId = typeof snapshot === 'string' ? snapshot : snapshot.id;
    const revert = backend.driver.revertToSnapshot?.bind(backend.driver);
    if (!backend.capabilities.revertToSnapshot || !revert)
      throw unsupported(
        `backend ${backend.name} (${backend.driverName}) cannot revert a volume to a snapshot`,
      );
    await engine.locks.withLocks([lockKey('volume', this.id), lockKey('snapshot', snapshotId)], async () => {
      let rec = await mustGet(engine, 'volume', this.id);
      const snap = await mustGet(engine, 'snapshot', snapshotId);
      if (snap.volumeId !== this.id)
        throw invalidArgument(
          `snapshot: ${snapshotId} is a snapshot of volume ${snap.volumeId}, not of ${this.id}`,
        );
      assertStatus('volume', this.id, rec.status, ['available', 'error'], 'revert');
      assertStatus('snapshot', snapshotId, snap.status, ['available'], 'revert to');
      rec = await save(engine, rec, { status: 'reverting' });
      faultPoint('volume.revert:after-status');
      try {
        const update = await revert(volumeRef(rec), snapshotRef(snap));
        this.rec = await save(engine, rec, {
          status: 'available',
          driverData: update?.driverData ?? rec.driverData,
          lastError: null,
        });
      } catch (err) {
        this.rec = await save(engine, rec, { status: 'error', lastError: failure('revert', err) });
        throw err;
      }
      engine.logger.info({ volume: this.id, snapshot: snapshotId }, 'volume reverted to snapshot');
    });
    return this;
  }

  /**
   * Forgets the volume without deleting its data: the record goes, the object stays on the
   * backend. The volume must be `available`, with no snapshots or connections.
   * @returns the object's name on the backend (what `backend.manageVolume` takes to adopt it again)
   */
  async unmanage(): Promise<string> {
    const { engine } = this;
    const backend = engine.backend(this.rec.backend);
    if (!backend.capabilities.manageExisting || !backend.driver.unmanageVolume)
      throw unsupported(`backend ${backend.name} (${backend.driverName}) cannot unmanage volumes`);
    return engine.locks.withLocks([lockKey('volume', this.id)], async () => {
      const rec = await mustGet(engine, 'volume', this.id);
      assertStatus('volume', this.id, rec.status, ['available'], 'unmanage');
      await this.assertNoDependents('unmanage');
      const reference = await backend.driver.unmanageVolume!(volumeRef(rec));
      await engine.store.remove('volume', this.id);
      engine.logger.info({ volume: this.id, reference }, 'volume unmanaged');
      return reference;
    });
  }

  /** Throws INVALID_STATE while the volume has snapshots or connections. */
  private async assertNoDependents(operation: string): Promise<void> {
    const snapshots = await this.engine.store.list('snapshot', { volumeId: this.id });
    if (snapshots.length > 0) {
      throw invalidState(
        `cannot ${operation} volume ${this.id}: it has ${snapshots.length} snapshot(s) (${snapshots.map((s) => s.id).join(', ')}); delete them first`,
      );
    }
    const connections = await this.engine.store.list('connection', { volumeId: this.id });
    if (connections.length > 0) {
      throw invalidState(
        `cannot ${operation} volume ${this.id}: it is connected to ${connections.map((c) => c.host).join(', ')}; detach or disconnect it first`,
      );
    }
  }

  /**
   * Deletes the volume from its backend and the state store. Deleting a volume that is gone
   * already succeeds.
   * @throws CairnError INVALID_STATE while it has snapshots or connections, or is busy
   */
  async delete(options: ForceOptions = {}): Promise<void> {
    const { force } = parseWith(forceOptionsSchema, options, 'delete options');
    const { engine } = this;
    await engine.locks.withLocks([lockKey('volume', this.id)], async () => {
      let rec = await engine.store.get('volume', this.id);
      if (!rec) return;
      const backend = engine.backend(rec.backend);
      await this.assertNoDependents('delete');
      const allowed = force
        ? ['available', 'error', 'error_deleting', 'creating', 'extending', 'reverting', 'deleting']
        : ['available', 'error', 'error_deleting'];
      assertStatus('volume', this.id, rec.status, allowed, 'delete');
      if (rec.status !== 'deleting') rec = await save(engine, rec, { status: 'deleting' });
      faultPoint('volume.delete:after-status');
      try {
        await backend.driver.deleteVolume(volumeRef(rec));
        faultPoint('volume.delete:after-driver');
      } catch (err) {
        this.rec = await save(engine, rec, { status: 'error_deleting', lastError: failure('delete', err) });
        throw err;
      }
      await engine.store.remove('volume', this.id);
      engine.logger.info({ volume: this.id }, 'volume deleted');
    });
  }

  /**
   * Exports the volume to the host `connector` describes (see `cairn.hostConnector()`).
   * @throws CairnError INVALID_STATE when already connected and the volume is not multi-attach
   */
  async connect(connector: HostConnector, options: ConnectOptions = {}): Promise<Connection> {
    const parsed = parseWith(hostConnectorSchema, connector, 'host connector');
    const { mode } = parseWith(connectOptionsSchema, options, 'connect options');
    const record = await this.engine.locks.withLocks([lockKey('volume', this.id)], () =>
      connectLocked(this.engine, this.id, parsed, mode),
    );
    await this.refresh();
    return new Connection(this.engine, record);
  }

  /** Removes a connection (detaching it first when attached here). */
  async disconnect(connection: Connection, options: ForceOptions = {}): Promise<void> {
    if (connection.volumeId !== this.id)
      throw invalidArgument(
        `connection ${connection.id} belongs to volume ${connection.volumeId}, not ${this.id}`,
      );
    await connection.disconnect(options);
    await this.refresh().catch(() => {});
  }

  /**
   * Connects the volume to this host and attaches it as a local block device.
   * @returns the attached connection; its `path` is the device
   * @throws CairnError INVALID_STATE when the volume is attached already
   */
  async attach(options: ConnectOptions = {}): Promise<Connection> {
    const connector = await this.engine.hostConnector();
    const connection = await this.connect(connector, options);
    try {
      await connection.attach();
    } catch (err) {
      await attempt(this.engine, `disconnecting ${connection.id} after a failed attach`, () =>
        connection.disconnect(),
      );
      throw err;
    }
    await this.refresh();
    return connection;
  }

  /**
   * Detaches the local device on this host and removes its connection.
   * @throws CairnError INVALID_STATE when the volume is not attached on this host
   */
  async detach(options: ForceOptions = {}): Promise<void> {
    const mine = (await this.connections()).filter((c) => c.host === this.engine.localHost);
    if (mine.length === 0)
      throw invalidState(`volume ${this.id} is not attached on this host (${this.engine.localHost})`);
    for (const c of mine) await c.disconnect(options);
    await this.refresh();
  }

  /** The stored record, as `dump()` and `load()` use it (a volume holds no secrets). */
  toJSON(): VolumeRecord {
    return this.record;
  }
}

/** The size of a volume made from a source: as requested, but never smaller than the source. */
export function sizeFromSource(requested: number | undefined, sourceSize: number, what: string): number {
  if (requested === undefined) return sourceSize;
  if (requested < sourceSize)
    throw invalidArgument(`size: ${requested} bytes is smaller than the ${what} (${sourceSize} bytes)`);
  return requested;
}
