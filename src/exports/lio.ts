import {
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rmdir,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import type { HostConnector } from '../core/records.js';
import { backendFailure, conflict, errorMessage, unsupported } from '../util/errors.js';
import { hasCode } from '../util/fsx.js';
import type { IscsiExportConfig } from './config.js';
import {
  type ChapCredentials,
  chapUsername,
  iscsiConnectionInfo,
  lunSerial,
  newChapPassword,
  requireInitiator,
  targetIqn,
  validateBackingPath,
  validateInitiatorName,
} from './iscsi-common.js';
import type { Exporter, ExporterContext, ExportTarget } from './spi.js';

/** LIO's configfs tree. */
const ROOT = '/sys/kernel/config/target';
/**
 * Cairn's backstores live under their own HBA index (`fileio_3260`, `iblock_3260`), apart from
 * those targetcli makes (`fileio_0`, …), so neither tool trips over the other's objects.
 */
const HBA = 3260;
/** The volume's LUN in its target (and in each host's ACL). */
const LUN = 0;
const TPG = 'tpgt_1';

type Kind = 'fileio' | 'iblock';

/**
 * The `lio` iSCSI exporter: the kernel's target (LIO), configured directly through configfs
 * (no targetcli), so Cairn must run as root on the target host. Everything lives in configfs
 * and is read back from it; nothing is saved (configfs is empty after a reboot, as with
 * targetcli without `saveconfig`).
 *
 * Per volume: a backstore `core/{fileio,iblock}_3260/cairn-<id>` (fileio for a file, with
 * buffered I/O and an emulated write cache that the initiator's flushes sync; iblock for a
 * block device), its unit serial set from the volume id, UNMAP on (thin); target
 * `<iqnPrefix>:<id>` with one TPG listening on every configured portal, LUN 0, and one ACL per
 * exported initiator (no demo mode): the ACL maps the LUN write-protected for a read-only
 * export, and holds that host's CHAP user and secret, which a later export reads back.
 */
export async function createLioExporter(config: IscsiExportConfig, ctx: ExporterContext): Promise<Exporter> {
  const soName = (volumeId: string) => `cairn-${volumeId}`;
  const soDir = (kind: Kind, volumeId: string) => join(ROOT, 'core', `${kind}_${HBA}`, soName(volumeId));
  const tpgDir = (volumeId: string) => join(ROOT, 'iscsi', targetIqn(config, volumeId), TPG);

  async function ready(): Promise<void> {
    if (await exists(join(ROOT, 'core'))) return;
    // Not loaded yet: modprobe the target core; configfs loads the iSCSI fabric on first mkdir.
    await ctx.runner.run(['modprobe', 'target_core_mod'], { root: true, timeoutMs: 30_000 }).catch(() => {});
    if (!(await exists(join(ROOT, 'core')))) {
      throw unsupported(
        `backend ${ctx.backendName}: LIO is not available on this host (no ${ROOT}: load target_core_mod and mount configfs)`,
      );
    }
  }

  /** Makes (or finds) the volume's backstore; returns its directory. */
  async function ensureBackstore(target: ExportTarget): Promise<string> {
    const kind: Kind = (await stat(target.path)).isBlockDevice() ? 'iblock' : 'fileio';
    const dir = soDir(kind, target.volumeId);
    await mkdir(dir, { recursive: true });
    if ((await attr(dir, 'enable')) === '1') {
      const path = await attr(dir, 'udev_path');
      if (path !== target.path)
        throw conflict(`LIO backstore ${dir} serves ${path || 'another file'}, not ${target.path}`);
      return dir;
    }
    if (kind === 'fileio') {
      const size = (await stat(target.path)).size;
      await put(dir, 'control', `fd_dev_name=${target.path},fd_dev_size=${size},fd_buffered_io=1`);
    } else {
      await put(dir, 'control', `udev_path=${target.path}`);
    }
    // Read back to tell which file an existing backstore serves.
    await put(dir, 'udev_path', target.path);
    // The serial can only change while no LUN uses the backstore: now.
    await put(dir, 'wwn/vpd_unit_serial', lunSerial(target.volumeId));
    await put(dir, 'enable', '1');
    // UNMAP punches holes (thin); fileio's buffered writes are synced by the initiator's flushes
    // because the device reports a write cache. Older kernels may refuse either: not fatal.
    await put(dir, 'attrib/emulate_tpu', '1').catch(() => {});
    if (kind === 'fileio') await put(dir, 'attrib/emulate_write_cache', '1').catch(() => {});
    return dir;
  }

  /** Makes the target, its TPG, LUN 0 and network portals; the TPG is enabled last, by export. */
  async function ensureTarget(volumeId: string, backstore: string): Promise<string> {
    const tpg = tpgDir(volumeId);
    const lunDir = join(tpg, 'lun', `lun_${LUN}`);
    await mkdir(lunDir, { recursive: true });
    const links = await symlinksIn(lunDir);
    if (links.length === 0) await symlink(backstore, join(lunDir, soName(volumeId)));
    else if ((await readlink(links[0]!)) !== backstore && !(await sameDir(links[0]!, backstore)))
      throw conflict(`LIO target ${targetIqn(config, volumeId)} LUN ${LUN} serves another backstore`);
    await set(tpg, 'attrib/generate_node_acls', '0');
    await set(tpg, 'attrib/demo_mode_write_protect', '1');
    // Discovery lists only the targets an initiator has an ACL on: volume names are not
    // advertised to every host, and a connector can tell "not allowed" from "wrong secret".
    await set(tpg, 'attrib/demo_mode_discovery', '0');
    await set(tpg, 'attrib/authentication', config.chap ? '1' : '0');
    for (const portal of config.portals) await mkdirOnce(join(tpg, 'np', portal));
    return tpg;
  }

  /** The host's ACL: LUN 0 mapped (write-protected when read-only), CHAP credentials. */
  async function ensureAcl(
    tpg: string,
    volumeId: string,
    initiator: string,
    readOnly: boolean,
  ): Promise<ChapCredentials | null> {
    const acl = join(tpg, 'acls', initiator);
    const mapped = join(acl, `lun_${LUN}`);
    await mkdir(mapped, { recursive: true });
    if ((await symlinksIn(mapped)).length === 0)
      await symlink(join(tpg, 'lun', `lun_${LUN}`), join(mapped, `lun_${LUN}`));
    // Only a mapped LUN has a write_protect to set: after the link.
    await set(mapped, 'write_protect', readOnly ? '1' : '0');
    if (!config.chap) return null;
    const username = chapUsername(volumeId, initiator);
    const known = { username: await attr(acl, 'auth/userid'), password: await attr(acl, 'auth/password') };
    if (known.username === username && known.password !== '') return known;
    const password = newChapPassword();
    await put(acl, 'auth/userid', username);
    await put(acl, 'auth/password', password, true);
    return { username, password };
  }

  async function removeAcl(tpg: string, initiator: string): Promise<void> {
    const acl = join(tpg, 'acls', initiator);
    if (!(await exists(acl))) return;
    for (const mapped of await subdirs(acl, /^lun_\d+$/)) {
      for (const link of await symlinksIn(mapped)) await unlink(link);
      await rmdirOnce(mapped);
    }
    // Removing the ACL ends the host's sessions.
    await rmdirOnce(acl);
  }

  /** Takes the whole target down (sessions end), then the backstore. */
  async function removeAll(volumeId: string): Promise<void> {
    const tpg = tpgDir(volumeId);
    if (await exists(tpg)) {
      if ((await attr(tpg, 'enable')) === '1') await put(tpg, 'enable', '0');
      for (const acl of await subdirs(join(tpg, 'acls'))) await removeAcl(tpg, acl.split('/').pop()!);
      for (const lun of await subdirs(join(tpg, 'lun'), /^lun_\d+$/)) {
        for (const link of await symlinksIn(lun)) await unlink(link);
        await rmdirOnce(lun);
      }
      for (const np of await subdirs(join(tpg, 'np'))) await rmdirOnce(np);
      await rmdirOnce(tpg);
    }
    await rmdirOnce(join(ROOT, 'iscsi', targetIqn(config, volumeId)));
    for (const kind of ['fileio', 'iblock'] as const) await rmdirOnce(soDir(kind, volumeId));
  }

  return {
    protocol: 'iscsi',

    validateConnector(connector: HostConnector) {
      requireInitiator(connector);
    },

    async export(target, connector, mode) {
      const initiator = requireInitiator(connector);
      validateBackingPath(target.path);
      await ready();
      const backstore = await ensureBackstore(target);
      const tpg = await ensureTarget(target.volumeId, backstore);
      const chap = await ensureAcl(tpg, target.volumeId, initiator, mode === 'ro');
      if ((await attr(tpg, 'enable')) !== '1') await put(tpg, 'enable', '1');
      return iscsiConnectionInfo({
        config,
        volumeId: target.volumeId,
        iqn: targetIqn(config, target.volumeId),
        lun: LUN,
        readOnly: mode === 'ro',
        multipath: connector.multipath === true,
        chap,
      });
    },

    async unexport(target, _info, connector) {
      // From the volume and the connector alone: an interrupted connect recorded no info.
      if (connector.initiator === undefined) return;
      const initiator = validateInitiatorName(connector.initiator);
      const tpg = tpgDir(target.volumeId);
      await removeAcl(tpg, initiator);
      // The target goes with its last host.
      if ((await subdirs(join(tpg, 'acls'))).length === 0) await removeAll(target.volumeId);
    },

    async remove(volumeId) {
      await removeAll(volumeId);
    },

    async resize(target) {
      const dir = soDir('fileio', target.volumeId);
      if ((await attr(dir, 'enable')) !== '1') return; // iblock reads its device's size itself
      const path = await attr(dir, 'udev_path');
      if (!path || (await stat(path)).isBlockDevice()) return;
      // fileio on a file keeps the size it was given; a new one can be set while it is live.
      await put(dir, 'control', `fd_dev_size=${(await stat(path)).size}`);
    },

    async close() {},
  };
}

/** Reads a configfs attribute, trimmed; '' when it does not exist. */
async function attr(dir: string, name: string): Promise<string> {
  return (await readFile(join(dir, name), 'utf8').catch(() => '')).trim();
}

/**
 * Writes a configfs attribute in one write(2), without a trailing newline: LIO keeps the
 * newline as part of values such as the CHAP user name (and the login then fails).
 */
async function put(dir: string, name: string, value: string, secret = false): Promise<void> {
  const path = join(dir, name);
  try {
    // As a shell's `>` does: some attributes (control) are write-only.
    await writeFile(path, value, { flag: 'w' });
  } catch (err) {
    const shown = secret ? '***' : JSON.stringify(value);
    throw backendFailure(`LIO: writing ${shown} to ${path} failed: ${errorMessage(err)}`, { cause: err });
  }
}

/** Writes an attribute only when it differs (some refuse a rewrite while the TPG is enabled). */
async function set(dir: string, name: string, value: string): Promise<void> {
  if ((await attr(dir, name)) !== value) await put(dir, name, value);
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function mkdirOnce(path: string): Promise<void> {
  await mkdir(path).catch((err) => {
    if (!hasCode(err, 'EEXIST')) throw err;
  });
}

async function rmdirOnce(path: string): Promise<void> {
  await rmdir(path).catch((err) => {
    if (!hasCode(err, 'ENOENT')) throw err;
  });
}

/** Subdirectories of `dir` (full paths), optionally only those whose name matches. */
async function subdirs(dir: string, name?: RegExp): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && (!name || name.test(e.name))).map((e) => join(dir, e.name));
}

async function symlinksIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isSymbolicLink()).map((e) => join(dir, e.name));
}

/** configfs may show a link's target as a relative path: compare what they resolve to. */
async function sameDir(link: string, dir: string): Promise<boolean> {
  const [a, b] = await Promise.all([stat(link).catch(() => null), stat(dir).catch(() => null)]);
  return a !== null && b !== null && a.ino === b.ino && a.dev === b.dev;
}
