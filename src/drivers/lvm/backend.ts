import { stat } from 'node:fs/promises';
import type { CommandRunner } from '../../exec/runner.js';
import type { LvInfo, VgReport } from '../../parse/lvm.js';
import { ErrorCode, isCairnError, notFound } from '../../util/errors.js';
import type { ProgressFn } from '../spi.js';
import { type LvmAccess, readVg, runLvm } from './cli.js';
import { waitForDevice } from './copy.js';
import { lvPath } from './names.js';

/**
 * stats() reuses a VG report for this long: an LVM command takes a VG lock and ~0.1–1 s, and
 * capacity is polled often (CSI GetCapacity, list views). Every change made through any backend
 * of this process on the VG drops it at once; changes from elsewhere show within this time.
 */
const REPORT_TTL_MS = 5000;

interface Cached {
  at: number;
  value: Promise<VgReport>;
}
/** Cached reports per VG (and LVM configuration), shared by every backend of the process on it. */
const reports = new Map<string, Cached | undefined>();

/** One volume group as the driver's two provisioning modes use it. */
export interface LvmBackend {
  readonly vg: string;
  /** The backend's name, for messages. */
  readonly name: string;
  readonly runner: CommandRunner;
  /** Runs an LVM command that changes the VG (the cached report is dropped). */
  change(argv: readonly string[], what: string): Promise<string>;
  /** The VG and its LVs; a report up to a few seconds old unless `fresh` (see REPORT_TTL_MS). */
  report(fresh?: boolean): Promise<VgReport>;
  /** The LV named `lv`, from a fresh report; null when there is none. */
  find(lv: string): Promise<LvInfo | null>;
  /** `/dev/<vg>/<lv>`. */
  path(lv: string): string;
  /** Activates the LV if it is not (also past the activation-skip flag); returns its device link. */
  activate(lv: string): Promise<string>;
  /** Removes the LV; one that is not there is fine. */
  remove(lv: string): Promise<void>;
}

/**
 * What differs between a thin backend (LVs in a thin pool, thin snapshots) and a thick one
 * (plain LVs, classic COW snapshots, copies). Sizes are in bytes and multiples of the extent.
 */
export interface Provisioning {
  readonly thin: boolean;
  /** The LVs this backend counts as its own: thin LVs of its pool, or LVs outside any pool. */
  owns(lv: LvInfo): boolean;
  /** The size a snapshot LV shows (for a COW snapshot, its origin's size when taken). */
  snapshotSize(lv: LvInfo): number;
  /** Capacity figures from the VG report; `own` are this backend's volume and snapshot LVs. */
  space(report: VgReport, own: LvInfo[]): { total: number; free: number; allocated: number };
  /** Why an existing LV cannot be adopted as a volume, or null. */
  unadoptable(lv: LvInfo): string | null;
  createVolume(lv: string, size: number): Promise<void>;
  createSnapshot(lv: string, origin: string, originSize: number): Promise<void>;
  /** Makes `lv` (of `size`) with the data of `source` (`sourceSize` bytes), a volume or a snapshot. */
  copyOf(
    lv: string,
    size: number,
    source: { lv: string; size: number; isSnapshot: boolean },
    onProgress?: ProgressFn,
  ): Promise<void>;
  extend(lv: string, oldSize: number, newSize: number): Promise<void>;
  /** Rolls `volume` (detached) back to `snapshot`, keeping `size`; the snapshot stays. */
  revert(
    volume: { lv: string; id: string; size: number },
    snapshot: { lv: string; size: number },
  ): Promise<void>;
  /** Removes a volume's LV (idempotent); refuses a COW origin, which would take its snapshots along. */
  removeVolume(lv: string): Promise<void>;
}

/** Makes the {@link LvmBackend} of one VG. */
export function lvmBackend(access: LvmAccess, vg: string, name: string): LvmBackend {
  const key = `${access.lvmConf ?? ''}\0${vg}`;
  const drop = () => {
    reports.delete(key);
  };
  const b: LvmBackend = {
    vg,
    name,
    runner: access.runner,
    async change(argv, what) {
      drop();
      try {
        return await runLvm(access, argv, what);
      } finally {
        drop();
      }
    },
    report(fresh = false) {
      const cached = reports.get(key);
      if (!fresh && cached && Date.now() - cached.at <= REPORT_TTL_MS) return cached.value;
      const value = readVg(access, vg);
      const entry = { at: Date.now(), value };
      reports.set(key, entry);
      value.catch(() => {
        if (reports.get(key) === entry) drop();
      });
      return value;
    },
    async find(lv) {
      return (await b.report(true)).lvs.find((l) => l.name === lv) ?? null;
    },
    path: (lv) => lvPath(vg, lv),
    async activate(lv) {
      const path = lvPath(vg, lv);
      if ((await stat(path).catch(() => null))?.isBlockDevice()) return path;
      await b
        .change(['lvchange', '--activate', 'y', '--ignoreactivationskip', `${vg}/${lv}`], `LV ${vg}/${lv}`)
        .catch((err) => {
          if (isCairnError(err, ErrorCode.NotFound))
            throw notFound(`backend ${name}: LV ${vg}/${lv} is missing`, { cause: err });
          throw err;
        });
      await waitForDevice(path);
      return path;
    },
    async remove(lv) {
      // --yes: LVM asks before removing an active LV. A COW origin is checked before (see
      // Provisioning.checkRemovable): --yes would remove its snapshots too.
      await b.change(['lvremove', '--yes', `${vg}/${lv}`], `LV ${vg}/${lv}`).catch((err) => {
        if (!isCairnError(err, ErrorCode.NotFound)) throw err;
      });
    },
  };
  return b;
}
