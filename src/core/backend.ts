import type {
  BackendStats,
  Capabilities,
  Driver,
  DriverUpdate,
  ProgressFn,
  VolumeRef,
} from '../drivers/spi.js';
import {
  alreadyExists,
  CairnError,
  ErrorCode,
  invalidArgument,
  isCairnError,
  toCairnError,
  unsupported,
} from '../util/errors.js';
import { faultPoint } from '../util/fault.js';
import { newId } from '../util/names.js';
import { withoutSecrets } from '../util/redact.js';
import { alignUp } from '../util/size.js';
import { parseWith } from '../util/zod.js';
import { attempt, type Engine, failure, lockKey, nameKey, save } from './engine.js';
import {
  type CreateVolumeOptions,
  type ManageVolumeOptions,
  parseCreateVolume,
  parseManageVolume,
} from './options.js';
import { baseFields, type HostConnector, hostConnectorSchema, type VolumeRecord } from './records.js';
import type { RecoveryAction } from './recovery.js';
import { Volume } from './volume.js';

/** Driver-independent fields of a new volume, after validation. */
export interface NewVolume {
  /** Absent for clones and volumes from snapshots: the source's size. */
  size?: number | undefined;
  name?: string | undefined;
  description?: string | undefined;
  metadata?: Record<string, string> | undefined;
  id?: string | undefined;
  extraSpecs?: Record<string, string> | undefined;
  multiattach?: boolean | undefined;
  sourceVolumeId?: string | null;
  sourceSnapshotId?: string | null;
}

/** How a new volume gets its data, with the locks on its source and the check of it. */
export interface VolumeSource {
  locks: string[];
  /**
   * Runs under the locks before anything is created: throws when the source is not usable, and
   * returns the size of the new volume given the size requested.
   */
  check(requested: number | undefined): Promise<number>;
  make(ref: VolumeRef, onProgress?: ProgressFn): Promise<DriverUpdate | undefined>;
  onProgress?: ProgressFn | undefined;
}

/**
 * A configured storage backend: one driver instance with a name. Create volumes here; find
 * them with {@link Backend.volumes}.
 * @example
 * const pool = await cairn.addBackend('pool', { driver: 'file', path: '/srv/cairn' });
 * const vol = await pool.createVolume({ size: '1GiB', name: 'data' });
 */
export class Backend {
  /** @internal */
  readonly engine: Engine;
  /** @internal */
  readonly driver: Driver;
  /** The backend's name, unique in its context. */
  readonly name: string;
  /** The driver's name, e.g. `file`. */
  readonly driverName: string;
  /** What recovery did when the backend was added: interrupted operations found and repaired. */
  recovered: RecoveryAction[] = [];
  private readonly config: Record<string, unknown>;

  /** @internal Use `cairn.addBackend`. */
  constructor(
    engine: Engine,
    name: string,
    driverName: string,
    config: Record<string, unknown>,
    driver: Driver,
  ) {
    this.engine = engine;
    this.name = name;
    this.driverName = driverName;
    this.config = config;
    this.driver = driver;
  }

  /** What this backend can do. */
  get capabilities(): Capabilities {
    return this.driver.capabilities;
  }

  /**
   * Creates an empty volume.
   * @example await backend.createVolume({ size: '10GiB', name: 'db', metadata: { app: 'pg' } })
   * @throws CairnError INVALID_ARGUMENT (bad options), ALREADY_EXISTS (id or name taken),
   *   INSUFFICIENT_CAPACITY, BACKEND_FAILURE
   */
  async createVolume(options: CreateVolumeOptions): Promise<Volume> {
    const o = parseCreateVolume(options);
    return this.createFrom(o, {
      locks: [],
      check: async () => o.size,
      make: (ref) => this.driver.createVolume(ref),
    });
  }

  /** @internal Creates a volume record, has the driver make it, and cleans up on failure. */
  async createFrom(o: NewVolume, source: VolumeSource): Promise<Volume> {
    const { engine } = this;
    if (o.multiattach && !this.capabilities.multiAttach) {
      throw new CairnError(
        ErrorCode.Unsupported,
        `backend ${this.name} (${this.driverName}) does not support multi-attach`,
      );
    }
    const id = o.id ?? newId();
    const keys = [lockKey('volume', id), ...source.locks];
    if (o.name) keys.push(nameKey(this.name, 'volume', o.name));
    return engine.locks.withLocks(keys, async () => {
      await this.assertFree(id, o.name);
      const size = alignUp(await source.check(o.size), this.capabilities.sizeAlignment);
      const record = this.newRecord(id, o, 'creating', size);
      let stored = await engine.store.put(record);
      faultPoint('volume.create:after-record');
      const ref: VolumeRef = { id, name: record.name, size, driverData: {} };
      let update: DriverUpdate | undefined;
      try {
        update = await source.make(ref, source.onProgress);
        faultPoint('volume.create:after-driver');
      } catch (err) {
        // Leave nothing behind: remove what the driver may have made, then the record. If the
        // backend can't be cleaned, keep the record as `error` so the volume is not lost. A
        // driver that found the volume there already (ALREADY_EXISTS) made nothing, and what is
        // there is not ours to delete.
        // A backend that timed out after it was reached would make the clean-up wait as long
        // again: the volume is kept as `error` (delete it once the backend answers).
        const timedOut = isCairnError(err, ErrorCode.Timeout) && err.details?.connected !== false;
        const cleanup = isCairnError(err, ErrorCode.AlreadyExists)
          ? undefined
          : timedOut
            ? err
            : await attempt(engine, `cleaning up volume ${id}`, () => this.driver.deleteVolume(ref));
        if (cleanup === undefined) await engine.store.remove('volume', id);
        else await save(engine, stored, { status: 'error', lastError: failure('create', err) });
        throw toCairnError(err, ErrorCode.BackendFailure);
      }
      stored = await save(engine, stored, {
        status: 'available',
        size: update?.size ?? size,
        driverData: update?.driverData ?? {},
      });
      engine.logger.info({ backend: this.name, volume: id, size: stored.size }, 'volume created');
      return new Volume(engine, stored);
    });
  }

  /**
   * Adopts an object that already exists on the backend (made outside Cairn) as a new volume,
   * like Cinder's manage. The driver renames it to its own naming scheme, so the reference is
   * gone afterwards; `volume.unmanage()` gives it back. The object is adopted before the record
   * is written: an interruption in between leaves it under its new name, which `cairn check`
   * reports as an orphan, and never deletes it.
   * @example await backend.manageVolume({ reference: 'legacy-db', name: 'db' })
   * @throws CairnError UNSUPPORTED, NOT_FOUND (no such object), INVALID_ARGUMENT (bad reference),
   *   ALREADY_EXISTS (id or name taken)
   */
  async manageVolume(options: ManageVolumeOptions): Promise<Volume> {
    const o = parseManageVolume(options);
    const { engine, driver } = this;
    const manage = driver.manageVolume?.bind(driver);
    if (!this.capabilities.manageExisting || !manage)
      throw unsupported(`backend ${this.name} (${this.driverName}) cannot manage existing objects`);
    if (o.multiattach && !this.capabilities.multiAttach)
      throw unsupported(`backend ${this.name} (${this.driverName}) does not support multi-attach`);
    const id = o.id ?? newId();
    const keys = [lockKey('volume', id)];
    if (o.name) keys.push(nameKey(this.name, 'volume', o.name));
    return engine.locks.withLocks(keys, async () => {
      await this.assertFree(id, o.name);
      const owner = driver.volumeIdOf?.(o.reference);
      if (owner && (await engine.store.get('volume', owner)))
        throw invalidArgument(`reference: "${o.reference}" is volume ${owner}, which Cairn manages already`);
      const ref: VolumeRef = { id, name: o.name ?? null, size: 0, driverData: {} };
      const adopted = await manage(ref, o.reference);
      faultPoint('volume.manage:after-driver');
      const record = {
        ...this.newRecord(id, o, 'available', adopted.size),
        driverData: adopted.driverData ?? {},
      };
      try {
        const stored = await engine.store.put(record);
        engine.logger.info({ backend: this.name, volume: id, reference: o.reference }, 'volume managed');
        return new Volume(engine, stored);
      } catch (err) {
        // The object was adopted (renamed) but is not tracked: say where it is, so it can be
        // managed again, rather than deleting data the user made.
        let kept = `volume ${id}'s object`;
        const unmanage = driver.unmanageVolume?.bind(driver);
        if (unmanage)
          await attempt(engine, `finding the name of ${o.reference}`, async () => {
            kept = await unmanage({ ...ref, size: adopted.size });
          });
        const e = toCairnError(err, ErrorCode.BackendFailure);
        throw new CairnError(e.code, `${e.message}; the object stays on the backend as ${kept}`, {
          cause: err,
        });
      }
    });
  }

  /** A new volume record of this backend from validated options. */
  private newRecord(id: string, o: NewVolume, status: VolumeRecord['status'], size: number): VolumeRecord {
    return {
      kind: 'volume',
      ...baseFields(id, this.name),
      name: o.name ?? null,
      description: o.description ?? null,
      metadata: o.metadata ?? {},
      status,
      attachStatus: 'detached',
      size,
      sourceVolumeId: o.sourceVolumeId ?? null,
      sourceSnapshotId: o.sourceSnapshotId ?? null,
      extraSpecs: o.extraSpecs ?? {},
      multiattach: o.multiattach ?? false,
    };
  }

  /** Throws ALREADY_EXISTS when the volume id, or its name on this backend, is taken. */
  private async assertFree(id: string, name: string | undefined): Promise<void> {
    const { store } = this.engine;
    if (await store.get('volume', id)) throw alreadyExists(`volume ${id} already exists`);
    if (name && (await store.list('volume', { backend: this.name, name })).length > 0) {
      throw alreadyExists(`a volume named "${name}" already exists on backend ${this.name}`);
    }
  }

  /** Capacity and usage. `refresh` is accepted for API parity; stats are always read live. */
  async stats(_opts: { refresh?: boolean } = {}): Promise<BackendStats> {
    return this.driver.stats();
  }

  /** Volumes on this backend, optionally filtered by id or name, oldest first. */
  async volumes(filter: { id?: string; name?: string } = {}): Promise<Volume[]> {
    const records = await this.engine.store.list('volume', { ...filter, backend: this.name });
    return records.map((r) => new Volume(this.engine, r));
  }

  /**
   * Checks that this backend can export volumes to the host `connector` describes.
   * @throws CairnError INVALID_ARGUMENT naming what is missing or wrong
   */
  validateConnector(connector: HostConnector): void {
    this.driver.validateConnector(parseWith(hostConnectorSchema, connector, 'host connector'));
  }

  /** Releases the driver's resources; the backend is removed from its context. */
  async close(): Promise<void> {
    this.engine.forgetBackend(this.name);
    await this.driver.close();
  }

  /** The backend's configuration without secrets (unless `includeSecrets`). */
  toJSON(opts?: unknown): Record<string, unknown> {
    const include =
      typeof opts === 'object' && opts !== null && (opts as { includeSecrets?: boolean }).includeSecrets;
    const config = { driver: this.driverName, ...this.config };
    return include ? structuredClone(config) : withoutSecrets(config);
  }
}
