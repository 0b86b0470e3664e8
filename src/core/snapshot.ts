import type { SnapshotRef } from '../drivers/spi.js';
import { failure, lockKey, mustGet, save } from './engine.js';
import { type DerivedVolumeOptions, parseDerivedVolume } from './options.js';
import type { SnapshotRecord } from './records.js';
import { assertStatus } from './states.js';
import { Stored } from './stored.js';
import { sizeFromSource, type Volume } from './volume.js';

/** Driver view of a snapshot record. */
export const snapshotRef = (r: SnapshotRecord): SnapshotRef => ({
  id: r.id,
  name: r.name,
  volumeId: r.volumeId,
  size: r.size,
  driverData: r.driverData,
});

/**
 * A point-in-time copy of a volume. Make new volumes from it with {@link Snapshot.createVolume}.
 * @example
 * const snap = await vol.createSnapshot({ name: 'before-upgrade' });
 * const restored = await snap.createVolume({ name: 'restored' });
 */
export class Snapshot extends Stored<SnapshotRecord> {
  /** Id of the volume the snapshot was taken of. */
  get volumeId(): string {
    return this.rec.volumeId;
  }
  /** Size of the volume when the snapshot was taken, in bytes. */
  get size(): number {
    return this.rec.size;
  }

  /** A new volume holding the snapshot's data (a restore), on the snapshot's backend. */
  async createVolume(options: DerivedVolumeOptions = {}): Promise<Volume> {
    const o = parseDerivedVolume(options);
    const backend = this.engine.backend(this.rec.backend);
    let snap = this.rec;
    return backend.createFrom(
      { ...o, sourceSnapshotId: this.id },
      {
        locks: [lockKey('snapshot', this.id)],
        check: async (requested) => {
          snap = await mustGet(this.engine, 'snapshot', this.id);
          assertStatus('snapshot', this.id, snap.status, ['available'], 'create a volume from');
          return sizeFromSource(requested, snap.size, 'snapshot');
        },
        make: (ref, onProgress) =>
          backend.driver.createVolumeFromSnapshot(ref, snapshotRef(snap), onProgress),
        onProgress: o.onProgress,
      },
    );
  }

  /** Deletes the snapshot. Deleting one that is gone already succeeds. */
  async delete(): Promise<void> {
    const { engine } = this;
    await engine.locks.withLocks([lockKey('snapshot', this.id)], async () => {
      let rec = await engine.store.get('snapshot', this.id);
      if (!rec) return;
      const backend = engine.backend(rec.backend);
      assertStatus(
        'snapshot',
        this.id,
        rec.status,
        ['available', 'error', 'error_deleting', 'deleting'],
        'delete',
      );
      if (rec.status !== 'deleting') rec = await save(engine, rec, { status: 'deleting' });
      try {
        await backend.driver.deleteSnapshot(snapshotRef(rec));
      } catch (err) {
        this.rec = await save(engine, rec, { status: 'error_deleting', lastError: failure('delete', err) });
        throw err;
      }
      await engine.store.remove('snapshot', this.id);
      engine.logger.info({ snapshot: this.id }, 'snapshot deleted');
    });
  }

  /** The stored record, as `dump()` and `load()` use it. */
  toJSON(): SnapshotRecord {
    return this.record;
  }
}
