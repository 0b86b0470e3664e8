import { readdir, readFile, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import type { LocalDevices } from '../conformance/driver.js';

// How the conformance suite sees the devices that attaches over a network protocol make on this
// host, from sysfs alone (no udev in the test VM): iSCSI sessions, NVMe subsystems, NBD devices.

const read = (path: string) =>
  readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => null,
  );
const list = (dir: string) => readdir(dir).catch(() => [] as string[]);

/** The iSCSI target behind an sd or a multipath dm device (its first path), or null. */
async function iscsiTargetOf(device: string): Promise<string | null> {
  let name = basename(device);
  if (name.startsWith('dm-')) name = (await list(`/sys/block/${name}/slaves`))[0] ?? '';
  const path = await realpath(`/sys/block/${name}/device`).catch(() => '');
  const session = /\/(session\d+)\//.exec(path)?.[1];
  return session ? read(`/sys/class/iscsi_session/${session}/targetname`) : null;
}

/** iSCSI: one session per portal an attach logs in to (all of them with multipath). */
export function iscsiDevices(iqnPrefix: string, sessionsPerAttach: number): LocalDevices {
  return {
    perAttach: sessionsPerAttach,
    async held() {
      const out: string[] = [];
      for (const s of await list('/sys/class/iscsi_session')) {
        const target = await read(`/sys/class/iscsi_session/${s}/targetname`);
        if (target?.startsWith(iqnPrefix)) out.push(`${s}=${target}`);
      }
      return out.sort();
    },
    async backing(device) {
      const target = await iscsiTargetOf(device);
      return target?.startsWith(iqnPrefix) ? target : null;
    },
  };
}

/** NVMe-oF: one subsystem per attach, whatever the number of paths (native multipath). */
export function nvmeDevices(nqnPrefix: string): LocalDevices {
  return {
    perAttach: 1,
    async held() {
      const out: string[] = [];
      for (const s of await list('/sys/class/nvme-subsystem')) {
        const nqn = await read(`/sys/class/nvme-subsystem/${s}/subsysnqn`);
        if (nqn?.startsWith(nqnPrefix)) out.push(`${s}=${nqn}`);
      }
      return out.sort();
    },
    async backing(device) {
      const nqn = await read(`/sys/block/${basename(device)}/device/subsysnqn`);
      return nqn?.startsWith(nqnPrefix) ? nqn : null;
    },
  };
}

/** The export an NBD device's client serves (`nbd-client … -N NAME`), or null when not connected. */
async function nbdExportOf(name: string): Promise<string | null> {
  const pid = await read(`/sys/block/${name}/pid`);
  if (!pid) return null;
  const argv = ((await read(`/proc/${pid}/cmdline`)) ?? '').split('\0');
  const at = argv.indexOf('-N');
  return at >= 0 ? (argv[at + 1] ?? null) : null;
}

/** NBD: one connected /dev/nbdN per attach. */
export function nbdDevices(): LocalDevices {
  return {
    perAttach: 1,
    async held() {
      const out: string[] = [];
      for (const name of await list('/sys/block')) {
        if (!/^nbd\d+$/.test(name)) continue;
        const exported = await nbdExportOf(name);
        if (exported) out.push(`/dev/${name}=${exported}`);
      }
      return out.sort();
    },
    backing: (device) => nbdExportOf(basename(device)),
  };
}
