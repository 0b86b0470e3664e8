import { backendFailure, ErrorCode, isCairnError } from '../../util/errors.js';
import type { LvmBackend, Provisioning } from './backend.js';
import { lvmSaid } from './cli.js';
import { REVERT } from './names.js';

/**
 * Thin provisioning: volumes are thin LVs in `pool`; snapshots, clones and volumes from
 * snapshots are all thin snapshots (`lvcreate --snapshot` of a thin LV, no size), which share
 * the pool's blocks and are independent LVs: any of them can be removed in any order.
 */
export function thinProvisioning(b: LvmBackend, pool: string): Provisioning {
  const at = (lv: string) => `${b.vg}/${lv}`;

  /**
   * A thin snapshot of `origin`. Snapshots keep LVM's activation-skip flag (no device until
   * needed); volumes are made without it and active.
   */
  const snapshot = (lv: string, origin: string, asVolume: boolean) =>
    b.change(
      [
        'lvcreate',
        '--snapshot',
        '--setactivationskip',
        asVolume ? 'n' : 'y',
        ...(asVolume ? ['--activate', 'y'] : []),
        '--name',
        lv,
        at(origin),
      ],
      `thin snapshot ${at(lv)} of ${origin}`,
    );

  const grow = async (lv: string, size: number) => {
    await b.change(['lvextend', '--size', `${size}b`, at(lv)], `LV ${at(lv)}`).catch((err) => {
      if (!lvmSaid(err, 'sameSize')) throw err; // already that size: a retried extend
    });
  };

  /** Runs `step` on a new LV; removes the LV if it fails, so nothing half-made stays. */
  const orRemove = async (lv: string, step: () => Promise<unknown>) => {
    try {
      await step();
    } catch (err) {
      await b.remove(lv).catch(() => {});
      throw err;
    }
  };

  return {
    thin: true,
    owns: (lv) => lv.pool === pool,
    snapshotSize: (lv) => lv.size,

    space(report) {
      const p = report.lvs.find((l) => l.name === pool);
      const total = p?.size ?? 0;
      // The pool's own data usage: blocks shared by snapshots and clones count once.
      const used = Math.round((total * (p?.dataPercent ?? 0)) / 100);
      return { total, free: Math.max(0, total - used), allocated: used };
    },

    unadoptable: (lv) => (lv.pool === pool ? null : `not a thin LV of pool ${pool}`),

    async createVolume(lv, size) {
      await b.change(
        ['lvcreate', '--type', 'thin', '--virtualsize', `${size}b`, '--thinpool', pool, '--name', lv, b.vg],
        `thin LV ${at(lv)}`,
      );
    },

    async createSnapshot(lv, origin) {
      await snapshot(lv, origin, false);
    },

    async copyOf(lv, size, source, onProgress) {
      await snapshot(lv, source.lv, true);
      if (size > source.size) await orRemove(lv, () => grow(lv, size));
      onProgress?.(1);
    },

    async extend(lv, _oldSize, newSize) {
      await grow(lv, newSize);
    },

    async revert(volume, snap) {
      // A writable thin snapshot of the snapshot replaces the volume's LV: instant, and the
      // snapshot stays as it was (lvconvert --merge would consume it).
      const temp = `${REVERT}${volume.id}`;
      await snapshot(temp, snap.lv, true).catch(async (err) => {
        if (!isCairnError(err, ErrorCode.AlreadyExists)) throw err;
        await b.remove(temp); // left by an interrupted revert
        await snapshot(temp, snap.lv, true);
      });
      await orRemove(temp, async () => {
        if (volume.size > snap.size) await grow(temp, volume.size);
        await b.remove(volume.lv);
      });
      await b
        .change(['lvrename', b.vg, temp, volume.lv], `rename ${at(temp)} to ${volume.lv}`)
        .catch((err) => {
          throw backendFailure(
            `backend ${b.name}: ${(err as Error).message}; the reverted data is in LV ${at(temp)}: rename it to ${volume.lv}`,
            { cause: err },
          );
        });
    },

    async removeVolume(lv) {
      // Thin LVs are independent of their snapshots: nothing to check.
      await b.remove(lv);
    },
  };
}
