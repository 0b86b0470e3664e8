import { createHash } from 'node:crypto';
import {
  access,
  mkdir,
  readdir,
  readFile,
  rmdir,
  stat,
  statfs,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import type { ConnectionInfo, HostConnector } from '../core/records.js';
import { type NvmePortal as Portal, parseNvmePortal as parsePortal } from '../parse/nvme.js';
import { backendFailure, conflict, invalidArgument, unsupported } from '../util/errors.js';
import { hasCode } from '../util/fsx.js';
import { validateId } from '../util/names.js';
import type { NvmeofExportConfig } from './config.js';
import type { Exporter, ExporterContext, ExportTarget } from './spi.js';

/** Where the kernel's NVMe target keeps its configuration. */
const NVMET = '/sys/kernel/config/nvmet';
/** The namespace id of a volume in its subsystem: one volume, one subsystem, one namespace. */
const NSID = 1;
/** NVMF_NQN_SIZE − 1: the longest NQN the kernel accepts. */
const NQN_MAX = 223;
/** A host NQN: it becomes a configfs directory name, so no `/`, blanks or control characters. */
const HOST_NQN = /^nqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+:[A-Za-z0-9._:@+-]+$/;
/** statfs magic of overlayfs: nvmet sees a 1-byte block size on its files (Linux 6.1). */
const OVERLAYFS_MAGIC = 0x794c7630;

/**
 * The namespace identity of a subsystem: a UUID (RFC 9562 version 8, "custom"), the same 16
 * bytes as NGUID, and a serial number, all hashed from the NQN. They are the same after a
 * restart of Cairn or a re-export, so a host finds the device again by them.
 */
function namespaceIdentity(nqn: string): { uuid: string; nguid: string; serial: string } {
  const hash = createHash('sha256').update(`cairn:nvmet:${nqn}`).digest();
  const b = Buffer.from(hash.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString('hex');
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { uuid, nguid: hex, serial: hash.subarray(16, 26).toString('hex') };
}

const read = (path: string) =>
  readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => null,
  );
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

async function ensureDir(path: string): Promise<boolean> {
  try {
    await mkdir(path);
    return true;
  } catch (err) {
    if (hasCode(err, 'EEXIST')) return false;
    throw err;
  }
}

async function ensureLink(target: string, path: string): Promise<void> {
  await symlink(target, path).catch((err: unknown) => {
    if (!hasCode(err, 'EEXIST')) throw err;
  });
}

/** Removes a configfs symlink or directory; a missing one is fine. */
async function remove(path: string, how: 'link' | 'dir'): Promise<void> {
  await (how === 'link' ? unlink(path) : rmdir(path)).catch((err: unknown) => {
    if (!hasCode(err, 'ENOENT')) throw err;
  });
}

const list = (path: string) => readdir(path).catch(() => [] as string[]);

/**
 * Exports volumes over NVMe/TCP with the kernel target (nvmet), configured through configfs and
 * nothing else, so a restart of Cairn finds every export where it left it:
 *
 * - one subsystem `<nqnPrefix>:<volume id>` per volume, `attr_allow_any_host` 0, a host gets in
 *   by a link `allowed_hosts/<host NQN>` → `hosts/<host NQN>`;
 * - namespace 1 on the volume's file or block device (`device_path` takes both: nvmet opens a
 *   block device directly and falls back to the file path on ENOTBLK), with a UUID and NGUID
 *   hashed from the NQN that the connector finds the device by. A file is opened with O_DIRECT
 *   (`buffered_io` 0, the kernel's default); on a file system without O_DIRECT (tmpfs) it is
 *   opened buffered instead. Both honour the host's flushes;
 * - one nvmet port per configured portal, shared by every subsystem on it: found by its
 *   address, made with the lowest free port id when missing, removed once no subsystem uses it.
 *
 * Read-only exports are refused (UNSUPPORTED): nvmet has no read-only namespace attribute (Linux
 * 6.1), and a namespace is shared by all the subsystem's hosts anyway. Growing a volume writes
 * `revalidate_size`, which tells connected hosts with an asynchronous event. Removing a host's
 * `allowed_hosts` link does not drop a controller it already has (the kernel keeps it until the
 * host disconnects); removing the subsystem does.
 *
 * Writes configfs directly, so Cairn must run as root on the target host (the root helper is
 * used only for `modprobe`).
 */
export async function createNvmetExporter(
  config: NvmeofExportConfig,
  ctx: ExporterContext,
): Promise<Exporter> {
  const portals = config.portals.map(parsePortal);
  let ready: Promise<void> | undefined;
  // Ports are shared: one change to them at a time in this process (other processes: see findPort).
  let portQueue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = portQueue.then(fn, fn);
    portQueue = next.catch(() => {});
    return next;
  };

  function nqnOf(volumeId: string): string {
    const nqn = `${config.nqnPrefix}:${validateId(volumeId, 'volume id')}`;
    if (Buffer.byteLength(nqn) > NQN_MAX) throw invalidArgument(`NQN ${nqn} is longer than ${NQN_MAX} bytes`);
    return nqn;
  }

  function hostNqnOf(connector: HostConnector): string {
    const nqn = connector.nqn;
    if (typeof nqn !== 'string' || !HOST_NQN.test(nqn) || Buffer.byteLength(nqn) > NQN_MAX) {
      throw invalidArgument(
        `connector.nqn: NVMe-oF exports need the host's NQN (nqn.yyyy-mm.domain:…, as in /etc/nvme/hostnqn; generate one with "nvme gen-hostnqn"); got ${JSON.stringify(nqn)}`,
      );
    }
    return nqn;
  }

  /** Loads nvmet-tcp once when configfs shows no nvmet. */
  function ensureNvmet(): Promise<void> {
    ready ??= (async () => {
      if (!(await exists(join(NVMET, 'ports'))))
        await ctx.runner.run(['modprobe', 'nvmet-tcp'], { root: true, timeoutMs: 30_000 }).catch(() => {});
      if (!(await exists(join(NVMET, 'ports'))))
        throw unsupported(
          `no nvmet in configfs at ${NVMET}: load the nvmet-tcp module and mount configfs on /sys/kernel/config`,
        );
    })().catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  }

  /** The id of the port listening on `p`: an existing one, or a new one with the lowest free id. */
  async function findPort(p: Portal): Promise<string> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const ids = await list(join(NVMET, 'ports'));
      for (const id of ids) {
        const dir = join(NVMET, 'ports', id);
        const [trtype, adrfam, traddr, trsvcid] = await Promise.all(
          ['addr_trtype', 'addr_adrfam', 'addr_traddr', 'addr_trsvcid'].map((a) => read(join(dir, a))),
        );
        if (
          trtype === 'tcp' &&
          adrfam === p.adrfam &&
          traddr?.toLowerCase() === p.traddr &&
          trsvcid === p.trsvcid
        )
          return id;
      }
      const taken = new Set(ids.map(Number));
      let id = 1;
      while (taken.has(id)) id++;
      if (id > 65534) throw backendFailure('nvmet has no free port id');
      const dir = join(NVMET, 'ports', String(id));
      // Another process may take the same id first: then look again.
      if (!(await ensureDir(dir))) continue;
      await writeFile(join(dir, 'addr_trtype'), 'tcp');
      await writeFile(join(dir, 'addr_adrfam'), p.adrfam);
      await writeFile(join(dir, 'addr_traddr'), p.traddr);
      await writeFile(join(dir, 'addr_trsvcid'), p.trsvcid);
      return String(id);
    }
    throw backendFailure(`could not make an nvmet port for ${p.traddr}:${p.trsvcid} (busy configfs)`);
  }

  /** Links the subsystem into the port of each portal; the first link enables (binds) a port. */
  async function linkPorts(nqn: string): Promise<void> {
    for (const p of portals) {
      await serialized(async () => {
        for (let attempt = 0; ; attempt++) {
          const id = await findPort(p);
          try {
            await ensureLink(join(NVMET, 'subsystems', nqn), join(NVMET, 'ports', id, 'subsystems', nqn));
            return;
          } catch (err) {
            // ENOENT: another process removed the unused port meanwhile; find or make it again.
            if (hasCode(err, 'ENOENT') && attempt < 3) continue;
            throw backendFailure(
              `nvmet could not listen on ${p.traddr}:${p.trsvcid} (port ${id}): ${(err as Error).message}; is the address on this host and the port free?`,
              { cause: err },
            );
          }
        }
      });
    }
  }

  /** Removes our portals' ports that no subsystem uses any more. */
  async function pruneUnusedPorts(): Promise<void> {
    await serialized(async () => {
      for (const p of portals) {
        for (const id of await list(join(NVMET, 'ports'))) {
          const dir = join(NVMET, 'ports', id);
          const [adrfam, traddr, trsvcid] = await Promise.all(
            ['addr_adrfam', 'addr_traddr', 'addr_trsvcid'].map((a) => read(join(dir, a))),
          );
          if (adrfam !== p.adrfam || traddr?.toLowerCase() !== p.traddr || trsvcid !== p.trsvcid) continue;
          if (
            (await list(join(dir, 'subsystems'))).length > 0 ||
            (await list(join(dir, 'referrals'))).length > 0
          )
            continue;
          await rmdir(dir).catch(() => {}); // in use again meanwhile: it stays
        }
      }
    });
  }

  /** Creates namespace 1 on `target.path`, or checks the one that is there. */
  async function ensureNamespace(nqn: string, target: ExportTarget): Promise<void> {
    const ns = join(NVMET, 'subsystems', nqn, 'namespaces', String(NSID));
    await ensureDir(ns);
    if ((await read(join(ns, 'enable'))) === '1') {
      const path = await read(join(ns, 'device_path'));
      if (path !== target.path)
        throw conflict(`subsystem ${nqn} already exports ${path}, not ${target.path}`);
      return;
    }
    const st = await stat(target.path);
    if (st.isFile() && (await statfs(target.path)).type === OVERLAYFS_MAGIC)
      throw unsupported(
        `nvmet cannot serve ${target.path}: it is on overlayfs, where the kernel target sees a 1-byte block size`,
      );
    const { uuid, nguid } = namespaceIdentity(nqn);
    await writeFile(join(ns, 'device_path'), target.path);
    await writeFile(join(ns, 'device_uuid'), uuid);
    await writeFile(join(ns, 'device_nguid'), nguid);
    try {
      await writeFile(join(ns, 'enable'), '1');
    } catch (err) {
      // O_DIRECT is refused (EINVAL) by file systems without it, such as tmpfs: go buffered.
      if (!(st.isFile() && hasCode(err, 'EINVAL'))) throw enableFailed(target.path, err);
      await writeFile(join(ns, 'buffered_io'), '1');
      await writeFile(join(ns, 'enable'), '1').catch((e: unknown) => {
        throw enableFailed(target.path, e);
      });
    }
  }

  async function removeSubsystem(nqn: string): Promise<void> {
    const subsys = join(NVMET, 'subsystems', nqn);
    // Unlinking it from a port drops the controllers hosts have through that port.
    for (const id of await list(join(NVMET, 'ports')))
      await remove(join(NVMET, 'ports', id, 'subsystems', nqn), 'link');
    const hosts = await list(join(subsys, 'allowed_hosts'));
    for (const h of hosts) await remove(join(subsys, 'allowed_hosts', h), 'link');
    for (const ns of await list(join(subsys, 'namespaces')))
      await remove(join(subsys, 'namespaces', ns), 'dir');
    await remove(subsys, 'dir');
    for (const h of hosts) await removeHostIfUnused(h);
    await pruneUnusedPorts();
  }

  async function removeHostIfUnused(hostNqn: string): Promise<void> {
    for (const s of await list(join(NVMET, 'subsystems')))
      if (await exists(join(NVMET, 'subsystems', s, 'allowed_hosts', hostNqn))) return;
    await rmdir(join(NVMET, 'hosts', hostNqn)).catch(() => {}); // linked again meanwhile: it stays
  }

  function info(nqn: string, hostNqn: string, connector: HostConnector): ConnectionInfo {
    const { uuid, nguid } = namespaceIdentity(nqn);
    const data: Record<string, unknown> = {
      transport: 'tcp',
      subsystemNqn: nqn,
      portals: [...config.portals],
      hostNqn,
      nsid: NSID,
      uuid,
      nguid,
      readOnly: false,
    };
    if (connector.hostId) data.hostId = connector.hostId;
    return { protocol: 'nvmeof', data: data as ConnectionInfo['data'] };
  }

  return {
    protocol: 'nvmeof',

    validateConnector(connector) {
      hostNqnOf(connector);
    },

    async export(target, connector, mode) {
      const hostNqn = hostNqnOf(connector);
      const nqn = nqnOf(target.volumeId);
      if (mode === 'ro')
        throw unsupported(
          'nvmet cannot export read-only: the kernel target has no read-only namespaces (Linux 6.1); connect read-write, or use an iscsi or nbd export',
        );
      if (!target.path.startsWith('/')) throw invalidArgument(`export path must be absolute: ${target.path}`);
      await ensureNvmet();
      const subsys = join(NVMET, 'subsystems', nqn);
      if (await ensureDir(subsys)) {
        // A new subsystem: its serial number is settable only before a host has seen it.
        await writeFile(join(subsys, 'attr_serial'), namespaceIdentity(nqn).serial).catch(() => {});
      }
      if ((await read(join(subsys, 'attr_allow_any_host'))) !== '0')
        await writeFile(join(subsys, 'attr_allow_any_host'), '0');
      await ensureNamespace(nqn, target);
      await ensureDir(join(NVMET, 'hosts', hostNqn));
      await ensureLink(join(NVMET, 'hosts', hostNqn), join(subsys, 'allowed_hosts', hostNqn));
      await linkPorts(nqn);
      return info(nqn, hostNqn, connector);
    },

    async unexport(target, connInfo, connector) {
      const nqn = nqnOf(target.volumeId);
      const hostNqn = typeof connector.nqn === 'string' ? connector.nqn : connInfo.data.hostNqn;
      const subsys = join(NVMET, 'subsystems', nqn);
      if (!(await exists(subsys))) return;
      if (typeof hostNqn === 'string' && HOST_NQN.test(hostNqn)) {
        await remove(join(subsys, 'allowed_hosts', hostNqn), 'link');
        await removeHostIfUnused(hostNqn);
      }
      // The subsystem goes with its last host.
      if ((await list(join(subsys, 'allowed_hosts'))).length === 0) await removeSubsystem(nqn);
    },

    async remove(volumeId) {
      const nqn = nqnOf(volumeId);
      if (!(await exists(join(NVMET, 'subsystems', nqn)))) return;
      await removeSubsystem(nqn);
    },

    async resize(target) {
      const ns = join(NVMET, 'subsystems', nqnOf(target.volumeId), 'namespaces', String(NSID));
      if ((await read(join(ns, 'enable'))) !== '1') return; // not exported: the next export opens it anew
      if (!(await exists(join(ns, 'revalidate_size'))))
        throw unsupported(
          'this kernel has no nvmet revalidate_size (Linux 5.13+): connected hosts cannot see the new size; disconnect them first',
        );
      await writeFile(join(ns, 'revalidate_size'), '1');
    },

    async close() {},
  };
}

function enableFailed(path: string, err: unknown) {
  return backendFailure(
    `nvmet could not open ${path} for its namespace: ${(err as Error).message} (the kernel log says why)`,
    { cause: err },
  );
}
