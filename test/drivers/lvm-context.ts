import { randomBytes } from 'node:crypto';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { DriverTestContext, LocalDevices } from '../conformance/driver.js';
import { writeAt } from '../harness/blockdev.js';
import { run } from '../harness/exec.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

const MiB = 1024 * 1024;

/** A volume group on a loop device over a sparse file, private to one test, with its own lvm.conf. */
export interface LvmStorage {
  vg: string;
  /** The thin pool, when asked for. */
  pool: string | undefined;
  /** The lvm.conf the driver is given (`lvmConf`): it sees only this VG's loop device. */
  lvmConf: string;
  /** Runs an LVM tool with that configuration. */
  lvm(...argv: string[]): Promise<string>;
  /** The dm name prefix of this VG's LVs: `/dev/mapper/<vg>-…` (dashes in the VG name doubled). */
  mapperPrefix: string;
  /** Removes the VG, its loop device and the file. */
  remove(): Promise<void>;
}

/**
 * Makes a VG named `cairn<random>` with 1 MiB extents (so sizes align like the file driver's)
 * on a loop device over a sparse file of `sizeMiB` under a fresh temp dir, and a thin pool of
 * `poolMiB` in it when asked. Only for a machine with device-mapper: the test VM.
 */
export async function makeLvmStorage(opts: { sizeMiB: number; poolMiB?: number }): Promise<LvmStorage> {
  const dir: TempDir = await tempDir('cairn-lvm-pv-');
  const file = join(dir.path, 'pv.img');
  await writeFile(file, '');
  await truncate(file, opts.sizeMiB * MiB);
  const loop = (await run(['losetup', '--find', '--show', file])).trim();
  const vg = `cairn${randomBytes(4).toString('hex')}`;
  const lvmConf = join(dir.path, 'lvm.conf');
  // LVM_SYSTEM_DIR replaces /etc/lvm entirely, so the guest's udev-less settings are repeated.
  // The filter keeps LVM from scanning every other device (faster), metadata backups are off.
  await writeFile(
    lvmConf,
    `devices {
  global_filter = [ "a|^${loop}$|", "r|.*|" ]
  obtain_device_list_from_udev = 0
  external_device_info_source = "none"
  use_devicesfile = 0
}
activation {
  udev_sync = 0
  udev_rules = 0
  monitoring = 0
}
global {
  use_lvmpolld = 0
}
backup {
  backup = 0
  archive = 0
}
`,
  );
  const lvm = (...argv: string[]) =>
    run(['env', `LVM_SYSTEM_DIR=${dir.path}`, ...argv], { timeoutMs: 120_000 });
  const remove = async () => {
    await lvm('vgremove', '--yes', '--force', vg).catch(() => {});
    await run(['losetup', '--detach', loop]).catch(() => {});
    await dir.cleanup();
  };
  try {
    await lvm('pvcreate', '-q', loop);
    await lvm('vgcreate', '-q', '--physicalextentsize', '1m', vg, loop);
    if (opts.poolMiB)
      await lvm('lvcreate', '-q', '--type', 'thin-pool', '--size', `${opts.poolMiB}m`, '--name', 'pool', vg);
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    vg,
    pool: opts.poolMiB ? 'pool' : undefined,
    lvmConf,
    lvm,
    mapperPrefix: `/dev/mapper/${vg.replaceAll('-', '--')}-`,
    remove,
  };
}

/**
 * Prepares an `lvm` backend for the conformance suite, thin (a 1 GiB pool in a 2 GiB VG) or
 * thick (a 2 GiB VG). The thick cases use a thick backend on the same VG: thin and thick LVs
 * share a VG without counting each other's. `root` is an empty directory: LVM keeps nothing in
 * files, and the VG's own loop device lies elsewhere so the suite's loop checks do not see it.
 */
export async function lvmContext(opts: { thin: boolean }): Promise<DriverTestContext> {
  const st = await makeLvmStorage({ sizeMiB: 2048, poolMiB: opts.thin ? 1024 : undefined });
  const root = await tempDir('cairn-lvm-root-');
  const base = { driver: 'lvm', volumeGroup: st.vg, lvmConf: st.lvmConf };
  const config = opts.thin ? { ...base, thinPool: st.pool } : base;
  return {
    config,
    freshConfig: () => ({ ...config }),
    thickConfig: base,
    requiredFields: ['volumeGroup'],
    invalidFields: [
      ['volumeGroup', ''],
      ['volumeGroup', 'a/b'],
      ['volumeGroup', '-vg'],
      ['volumeGroup', 'no-such-vg'],
      ['thinPool', 'snapshot0'],
      ['thinPool', 'no-such-pool'],
      ['lvmConf', 'relative/lvm.conf'],
      ['lvmConf', '/etc/lvm/missing/lvm.conf'],
      ['timeoutMs', 10],
    ],
    expectedCloneSpeed: opts.thin ? 'instant' : 'copy',
    foreign: {
      async make(reference, data, size) {
        const sizeArg = `${size}b`;
        if (st.pool)
          await st.lvm(
            'lvcreate',
            '-q',
            '--type',
            'thin',
            '--virtualsize',
            sizeArg,
            '--thinpool',
            st.pool,
            '--name',
            reference,
            st.vg,
          );
        else await st.lvm('lvcreate', '-q', '--yes', '--size', sizeArg, '--name', reference, st.vg);
        await writeAt(`/dev/${st.vg}/${reference}`, [0], data);
      },
      exists: (reference) =>
        st.lvm('lvs', `${st.vg}/${reference}`).then(
          () => true,
          () => false,
        ),
      remove: (reference) => st.lvm('lvremove', '-q', '--yes', `${st.vg}/${reference}`).then(() => {}),
    },
    root: root.path,
    localDevices: lvmDevices(st),
    cleanup: async () => {
      // Read-only attaches are loop devices over LVs: a leftover one would keep the VG busy.
      const leaked = (await loopsFromSysfs()).filter((l) => l.backFile.startsWith(st.mapperPrefix));
      for (const l of leaked) await run(['losetup', '--detach', l.name]).catch(() => {});
      await st.remove();
      await root.cleanup();
      if (leaked.length > 0)
        throw new Error(`loop devices left over LVs: ${leaked.map((l) => l.name).join(', ')}`);
    },
  };
}

/** Loop devices and their backing files, from sysfs: a `losetup` per look costs ~0.2 s under TCG. */
async function loopsFromSysfs(): Promise<Array<{ name: string; backFile: string }>> {
  const out: Array<{ name: string; backFile: string }> = [];
  for (const name of await readdir('/sys/block').catch(() => [])) {
    if (!/^loop\d+$/.test(name)) continue;
    const file = await readFile(`/sys/block/${name}/loop/backing_file`, 'utf8').catch(() => null);
    if (file !== null) out.push({ name: `/dev/${name}`, backFile: file.trim() });
  }
  return out;
}

/**
 * The devices the local connector makes for LVM volumes: none for a read-write attach (the LV's
 * own dm device is handed out), a read-only loop device over the LV for a read-only one.
 */
export function lvmDevices(st: LvmStorage): LocalDevices {
  const ours = async () => (await loopsFromSysfs()).filter((l) => l.backFile.startsWith(st.mapperPrefix));
  return {
    perAttach: 0,
    held: async () => (await ours()).map((l) => `${l.name}=${l.backFile}`).sort(),
    async backing(device) {
      const loop = (await ours()).find((l) => l.name === device);
      if (loop) return loop.backFile;
      const dm = await readFile(`/sys/class/block/${basename(device)}/dm/name`, 'utf8').catch(() => null);
      const mapper = dm === null ? null : `/dev/mapper/${dm.trim()}`;
      return mapper?.startsWith(st.mapperPrefix) ? mapper : null;
    },
  };
}
