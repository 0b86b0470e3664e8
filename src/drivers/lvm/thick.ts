import { isCowOrigin, isCowSnapshot } from '../../parse/lvm.js';
import {
  backendFailure,
  ErrorCode,
  insufficientCapacity,
  invalidState,
  isCairnError,
} from '../../util/errors.js';
import { formatSize } from '../../util/size.js';
import type { LvmBackend, Provisioning } from './backend.js';
import { lvmSaid } from './cli.js';
import { copyDevice, waitForDevice, zeroRange } from './copy.js';
import { CLONE } from './names.js';

/** Layouts of plain LVs that can be volumes; one with a cache, VDO or integrity layer cannot. */
const PLAIN = new Set(['linear', 'striped', 'mirror', 'raid']);
const LAYERED = new Set(['pool', 'thin', 'cache', 'writecache', 'vdo', 'integrity']);

/** The COW chunk size of snapshots (LVM's default, given explicitly: cowSize depends on it). */
const CHUNK = 4096;

/**
 * A COW area that holds every chunk of an origin of `size` bytes: the chunks themselves, one
 * 16-byte exception record per chunk (in chunks of their own), the header chunk, and one chunk
 * of slack. LVM trims a larger request to this same maximum ("Reducing COW size"). Not
 * `--extents 100%ORIGIN`: LVM quietly shrinks a percentage to the free space, and a snapshot
 * smaller than its origin can fill up and be invalidated.
 */
export function cowSize(size: number): number {
  const chunks = Math.ceil(size / CHUNK);
  const records = Math.ceil(chunks / (CHUNK / 16));
  return (chunks + records + 2) * CHUNK;
}

/**
 * Thick provisioning: volumes are plain LVs, zeroed when made and when they grow. Snapshots are
 * classic copy-on-write snapshots whose COW area holds a full copy of the volume ({@link cowSize}),
 * so a snapshot can never fill up and be invalidated (it takes as much space as its volume; the
 * volume growing later needs no more: writes past the size a snapshot was taken at are not
 * copied). Clones and volumes from snapshots are copies (`dd`, skipping zeros).
 */
export function thickProvisioning(b: LvmBackend): Provisioning {
  const at = (lv: string) => `${b.vg}/${lv}`;

  /** Refuses (before anything is made) when the VG has less than `bytes` free. */
  async function ensureSpace(bytes: number): Promise<void> {
    const { vg } = await b.report(true);
    const free = vg?.free ?? 0;
    if (bytes > free)
      throw insufficientCapacity(
        `backend ${b.name}: volume group ${b.vg} has ${formatSize(free)} free; ${formatSize(bytes)} needed`,
      );
  }

  /** A new LV of `size`, all zeros (see zeroRange); removed again if zeroing fails. */
  async function zeroedLv(lv: string, size: number): Promise<string> {
    // --yes: LVM asks before wiping a file system signature left on reused extents.
    await b.change(['lvcreate', '--yes', '--size', `${size}b`, '--name', lv, b.vg], `LV ${at(lv)}`);
    const path = b.path(lv);
    await orRemove(lv, async () => {
      await waitForDevice(path);
      await zeroRange(b.runner, path, 0, size);
    });
    return path;
  }

  async function orRemove(lv: string, step: () => Promise<unknown>): Promise<void> {
    try {
      await step();
    } catch (err) {
      await b.remove(lv).catch(() => {});
      throw err;
    }
  }

  const cowSnapshot = (lv: string, origin: string, originSize: number) =>
    b.change(
      [
        'lvcreate',
        '--snapshot',
        '--chunksize',
        `${CHUNK}b`,
        '--size',
        `${cowSize(originSize)}b`,
        '--name',
        lv,
        at(origin),
      ],
      `snapshot ${at(lv)} of ${origin}`,
    );

  return {
    thin: false,
    owns: (lv) => lv.pool === null && !lv.layout.includes('thin') && !lv.layout.includes('pool'),
    snapshotSize: (lv) => lv.originSize ?? lv.size,

    space(report, own) {
      // Volumes take their size and snapshots their COW area, all allocated up front.
      const allocated = own.reduce((sum, l) => sum + l.size, 0);
      return { total: report.vg?.size ?? 0, free: report.vg?.free ?? 0, allocated };
    },

    unadoptable(lv) {
      if (isCowSnapshot(lv)) return 'a snapshot';
      if (isCowOrigin(lv)) return 'the origin of snapshots (remove them first)';
      const plain = PLAIN.has(lv.layout[0] ?? '') && !lv.layout.some((l) => LAYERED.has(l));
      return lv.pool === null && plain ? null : `a ${lv.layout.join(',')} LV, not a plain one`;
    },

    async createVolume(lv, size) {
      await zeroedLv(lv, size);
    },

    async createSnapshot(lv, origin, originSize) {
      await cowSnapshot(lv, origin, originSize);
    },

    async copyOf(lv, size, source, onProgress) {
      // A volume is copied through a temporary snapshot: it may be in use while it is copied.
      // Its COW area is sized like any snapshot's, so it counts in the space needed.
      const temp = source.isSnapshot ? null : `${CLONE}${lv}`;
      await ensureSpace(size + (temp ? cowSize(source.size) : 0));
      if (temp) {
        await cowSnapshot(temp, source.lv, source.size).catch(async (err) => {
          if (!isCairnError(err, ErrorCode.AlreadyExists)) throw err;
          await b.remove(temp); // left by an interrupted clone
          await cowSnapshot(temp, source.lv, source.size);
        });
      }
      let copied = false;
      try {
        const from = await b.activate(temp ?? source.lv);
        const to = await zeroedLv(lv, size);
        await orRemove(lv, () => copyDevice(b.runner, from, to, source.size, { sparse: true, onProgress }));
        copied = true;
      } finally {
        // A failed removal is reported only when it is the only failure.
        if (temp)
          await b.remove(temp).catch((err) => {
            if (copied) throw err;
          });
      }
    },

    async extend(lv, oldSize, newSize) {
      const grow = () => b.change(['lvextend', '--size', `${newSize}b`, at(lv)], `LV ${at(lv)}`);
      await grow().catch(async (err) => {
        if (lvmSaid(err, 'sameSize')) return; // a retried extend
        if (!lvmSaid(err, 'originActive')) throw err;
        // LVM grows a COW origin only while it is inactive (its snapshots keep their size: writes
        // past the size they were taken at are not copied). Deactivation fails while it is open.
        await b.change(['lvchange', '--activate', 'n', at(lv)], `LV ${at(lv)}`).catch((e) => {
          if (!isCairnError(e, ErrorCode.InvalidState)) throw e;
          throw invalidState(
            `backend ${b.name}: ${at(lv)} has snapshots, so LVM extends it only while it is not in use: ${e.message}`,
          );
        });
        try {
          await grow();
        } finally {
          await b.change(['lvchange', '--activate', 'y', at(lv)], `LV ${at(lv)}`);
        }
      });
      await waitForDevice(b.path(lv));
      await zeroRange(b.runner, b.path(lv), oldSize, newSize - oldSize);
    },

    async revert(volume, snap) {
      // lvconvert --merge would consume the snapshot, which Cairn keeps: the snapshot's data is
      // copied back instead (every block: the volume's may differ), then the rest is zeroed.
      const from = await b.activate(snap.lv);
      const to = await b.activate(volume.lv);
      await copyDevice(b.runner, from, to, snap.size, { sparse: false });
      await zeroRange(b.runner, to, snap.size, volume.size - snap.size);
    },

    async removeVolume(lv) {
      // `lvremove --yes` of a COW origin removes its snapshots too: the selection leaves an origin
      // alone (Cairn deletes snapshots first; this guards against an inconsistent state).
      const out = await b
        .change(['lvremove', '--yes', '--select', `lv_name="${lv}" && lv_attr!~"^o"`, b.vg], `LV ${at(lv)}`)
        .catch((err) => {
          if (isCairnError(err, ErrorCode.NotFound)) return 'successfully removed'; // no VG: nothing left
          throw err;
        });
      if (/successfully removed/.test(out)) return;
      const left = await b.find(lv);
      if (left && isCowOrigin(left))
        throw invalidState(`backend ${b.name}: ${at(lv)} still has snapshots; delete them first`);
      if (left) throw backendFailure(`backend ${b.name}: lvremove left ${at(lv)} in place`);
    },
  };
}
