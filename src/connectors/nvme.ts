import { access, readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionInfo } from '../core/records.js';
import type { CommandRunner } from '../exec/runner.js';
import {
  classifyNvmeConnectError,
  type NvmePortal,
  parseNvmeAddress,
  parseNvmeIdNs,
  parseNvmePortal,
} from '../parse/nvme.js';
import {
  backendFailure,
  ErrorCode,
  invalidArgument,
  invalidState,
  isCairnError,
  timeout,
} from '../util/errors.js';
import { blockDeviceUsers } from './loop.js';
import type { AttachedDevice, Connector } from './spi.js';

const NQN = /^nqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+(:[A-Za-z0-9._:@+-]+)?$/;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
/** A namespace's block device: `nvme0n1`, never a hidden multipath path such as `nvme0c1n1`. */
const NS_DEVICE = /^nvme\d+n\d+$/;
const CTRL = /^nvme\d+$/;

/** How long a lost controller keeps reconnecting before the kernel removes it (and fails its I/O). */
const DEFAULT_CTRL_LOSS_TMO_S = 60;
const DEFAULT_RECONNECT_DELAY_S = 2;
/** One `nvme connect`: the kernel gives up on a silent portal after ~10 s and on no route after ~3 s. */
const CONNECT_TIMEOUT_MS = 30_000;
/** From the controllers being live to the namespace's block device appearing. */
const NAMESPACE_WAIT_MS = 20_000;

interface NvmeTarget {
  nqn: string;
  portals: NvmePortal[];
  hostNqn: string | undefined;
  hostId: string | undefined;
  /** 32 lower-case hex digits: the namespace UUID (or NGUID) the device is found by. */
  id: string;
  readOnly: boolean;
  ctrlLossTmoS: number;
  reconnectDelayS: number;
}

interface Controller {
  name: string;
  state: string;
  traddr: string;
  trsvcid: string;
}

function target(info: ConnectionInfo): NvmeTarget {
  const d = info.data;
  const bad = (k: string): never => {
    throw invalidArgument(`nvmeof connection info: data.${k} is invalid (got ${JSON.stringify(d[k])})`);
  };
  if (d.transport !== undefined && d.transport !== 'tcp') bad('transport');
  const nqn =
    typeof d.subsystemNqn === 'string' && NQN.test(d.subsystemNqn) ? d.subsystemNqn : bad('subsystemNqn');
  if (!Array.isArray(d.portals) || d.portals.length === 0 || !d.portals.every((p) => typeof p === 'string'))
    bad('portals');
  const optional = (k: string, re: RegExp) =>
    d[k] === undefined ? undefined : typeof d[k] === 'string' && re.test(d[k]) ? d[k] : bad(k);
  const seconds = (k: string, dflt: number) =>
    d[k] === undefined ? dflt : Number.isInteger(d[k]) && (d[k] as number) >= 0 ? (d[k] as number) : bad(k);
  const id = (optional('uuid', UUID) ?? optional('nguid', UUID) ?? bad('uuid'))
    .replaceAll('-', '')
    .toLowerCase();
  return {
    nqn,
    portals: (d.portals as string[]).map(parseNvmePortal),
    hostNqn: optional('hostNqn', NQN),
    hostId: optional('hostId', UUID),
    id,
    readOnly: d.readOnly === true,
    ctrlLossTmoS: seconds('ctrlLossTmoS', DEFAULT_CTRL_LOSS_TMO_S),
    reconnectDelayS: seconds('reconnectDelayS', DEFAULT_RECONNECT_DELAY_S),
  };
}

const read = (path: string) =>
  readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => null,
  );
const list = (path: string) => readdir(path).catch(() => [] as string[]);
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** The controllers this host has to subsystem `nqn`, whatever their state. */
async function controllers(nqn: string): Promise<Controller[]> {
  const out: Controller[] = [];
  for (const name of (await list('/sys/class/nvme')).filter((n) => CTRL.test(n))) {
    const dir = join('/sys/class/nvme', name);
    if ((await read(join(dir, 'subsysnqn'))) !== nqn) continue;
    const addr = parseNvmeAddress((await read(join(dir, 'address'))) ?? '');
    out.push({
      name,
      state: (await read(join(dir, 'state'))) ?? 'unknown',
      traddr: (addr.traddr ?? '').toLowerCase(),
      trsvcid: addr.trsvcid ?? '',
    });
  }
  return out;
}

/**
 * The block devices of the namespace `t.id` in subsystem `t.nqn`: the multipath head under the
 * subsystem (`/sys/class/nvme-subsystem/*`, native multipath) or the per-controller namespace
 * (`/sys/class/nvme/nvmeX/`, multipath off). Both the NQN and the UUID/NGUID must match.
 */
async function namespaceDevices(t: NvmeTarget): Promise<string[]> {
  const dirs: string[] = [];
  for (const s of await list('/sys/class/nvme-subsystem')) {
    const dir = join('/sys/class/nvme-subsystem', s);
    if ((await read(join(dir, 'subsysnqn'))) === t.nqn) dirs.push(dir);
  }
  for (const c of await controllers(t.nqn)) dirs.push(join('/sys/class/nvme', c.name));
  const found = new Set<string>();
  for (const dir of dirs) {
    for (const name of (await list(dir)).filter((n) => NS_DEVICE.test(n))) {
      const ids = await Promise.all(['uuid', 'nguid'].map((a) => read(join('/sys/class/block', name, a))));
      if (ids.some((v) => v?.replaceAll('-', '').toLowerCase() === t.id)) found.add(name);
    }
  }
  return [...found].sort();
}

function deviceName(path: string): string {
  const name = basename(path);
  if (!NS_DEVICE.test(name)) throw invalidArgument(`not an NVMe namespace device: ${JSON.stringify(path)}`);
  return name;
}

async function sizeOf(name: string): Promise<number | null> {
  const sectors = await read(`/sys/class/block/${name}/size`);
  return sectors === null ? null : Number(sectors) * 512;
}

const same = (c: Controller, p: NvmePortal) => c.traddr === p.traddr && c.trsvcid === p.trsvcid;

/**
 * The `nvmeof` protocol over TCP on this host, with nvme-cli. Attach connects to every portal
 * (`nvme connect -t tcp`) with bounded reconnects (`--ctrl-loss-tmo`, `--reconnect-delay`);
 * with the kernel's native multipath (`nvme_core multipath=Y`, Debian's default) the paths merge
 * into one `/dev/nvmeXnY`, and I/O continues over the others when a path drops. With multipath
 * off it connects to the first portal that answers only. The device is found in sysfs by the
 * subsystem NQN and the namespace UUID/NGUID from the connection info, never by its number.
 *
 * Errors: a portal that refuses this host (not in `allowed_hosts`) fails with a message that says
 * so; a portal that does not answer fails with TIMEOUT after a few seconds (the kernel makes one
 * SYN retry and waits ~10 s for a silent peer; each `nvme connect` is also killed after 30 s).
 */
export function createNvmeConnector(runner: CommandRunner): Connector {
  async function connect(t: NvmeTarget, p: NvmePortal): Promise<void> {
    const argv = ['nvme', 'connect', '-t', 'tcp', '-a', p.traddr, '-s', p.trsvcid, '-n', t.nqn];
    if (t.hostNqn) argv.push('--hostnqn', t.hostNqn);
    if (t.hostId) argv.push('--hostid', t.hostId);
    argv.push('--ctrl-loss-tmo', String(t.ctrlLossTmoS), '--reconnect-delay', String(t.reconnectDelayS));
    const where = `${p.adrfam === 'ipv6' ? `[${p.traddr}]` : p.traddr}:${p.trsvcid}`;
    try {
      await runner.run(argv, { root: true, timeoutMs: CONNECT_TIMEOUT_MS });
    } catch (err) {
      if (!isCairnError(err, ErrorCode.BackendFailure)) {
        if (isCairnError(err, ErrorCode.Timeout))
          throw timeout(`NVMe/TCP portal ${where} did not answer within ${CONNECT_TIMEOUT_MS} ms`, {
            cause: err,
          });
        throw err;
      }
      switch (classifyNvmeConnectError(err.message)) {
        case 'already-connected':
          return; // a controller for this subsystem and address exists (a concurrent attach)
        case 'rejected':
          throw backendFailure(
            `the NVMe target at ${where} refused host NQN ${t.hostNqn ?? "(this host's /etc/nvme/hostnqn)"} for subsystem ${t.nqn}: the host is not allowed there, or the subsystem does not exist`,
            { cause: err, details: { reason: 'host-not-allowed' } },
          );
        case 'refused':
          throw backendFailure(`nothing listens for NVMe/TCP at ${where} (connection refused)`, {
            cause: err,
          });
        case 'unreachable':
          throw timeout(`NVMe/TCP portal ${where} is unreachable: ${err.message}`, { cause: err });
        default:
          throw err;
      }
    }
  }

  async function disconnect(t: NvmeTarget): Promise<void> {
    if ((await controllers(t.nqn)).length === 0) return;
    // Works while the controllers are reconnecting to a target that is gone.
    await runner.run(['nvme', 'disconnect', '-n', t.nqn], { root: true, timeoutMs: 30_000 });
    for (let i = 0; (await controllers(t.nqn)).length > 0; i++) {
      if (i >= 150) throw timeout(`the controllers of ${t.nqn} were still there 15 s after nvme disconnect`);
      await sleep(100);
    }
  }

  async function waitForDevice(t: NvmeTarget): Promise<string> {
    const deadline = Date.now() + NAMESPACE_WAIT_MS;
    for (;;) {
      for (const name of await namespaceDevices(t)) {
        if (((await sizeOf(name)) ?? 0) > 0 && (await exists(`/dev/${name}`))) return name;
      }
      if (Date.now() > deadline)
        throw timeout(
          `connected to ${t.nqn}, but no namespace with UUID/NGUID ${t.id} (and a size) appeared within ${NAMESPACE_WAIT_MS} ms`,
        );
      await sleep(100);
    }
  }

  return {
    protocol: 'nvmeof',

    async attach(info, { readOnly }) {
      const t = target(info);
      if (!(await exists('/dev/nvme-fabrics')))
        await runner.run(['modprobe', 'nvme-tcp'], { root: true, timeoutMs: 30_000 }).catch(() => {});
      const multipath = (await read('/sys/module/nvme_core/parameters/multipath')) === 'Y';
      const before = await controllers(t.nqn);
      const errors: unknown[] = [];
      for (const p of t.portals) {
        if (!multipath && (await controllers(t.nqn)).length > 0) break;
        if (before.some((c) => same(c, p))) continue;
        await connect(t, p).catch((err: unknown) => errors.push(err));
      }
      if ((await controllers(t.nqn)).length === 0) {
        // Every portal failed: the most telling error (a refusal says more than a timeout).
        const rejected = errors.find((e) => isCairnError(e) && e.details?.reason === 'host-not-allowed');
        throw (
          rejected ??
          errors.find((e) => !isCairnError(e, ErrorCode.Timeout)) ??
          errors[0] ??
          backendFailure(`no controller to ${t.nqn} is left after connecting`)
        );
      }
      let name: string;
      try {
        name = await waitForDevice(t);
      } catch (err) {
        if (before.length === 0) await disconnect(t).catch(() => {});
        throw err;
      }
      if (readOnly || t.readOnly) await runner.run(['blockdev', '--setro', `/dev/${name}`], { root: true });
      return { path: `/dev/${name}`, type: 'block' };
    },

    async detach(info, device, { force }) {
      const t = target(info);
      deviceName(device.path);
      if (!force) {
        for (const name of await namespaceDevices(t)) {
          const users = await blockDeviceUsers(name);
          if (users.length > 0)
            throw invalidState(
              `/dev/${name} is in use (${users.join(', ')}); unmount it first, or detach with force`,
              {
                details: { device: `/dev/${name}` },
              },
            );
        }
      }
      await disconnect(t);
    },

    async extend(info, device) {
      const t = target(info);
      const name = deviceName(device.path);
      if (!(await namespaceDevices(t)).includes(name))
        throw invalidState(`${device.path} is no longer the namespace ${t.id} of ${t.nqn}`);
      for (const c of await controllers(t.nqn))
        if (c.state === 'live')
          await runner.run(['nvme', 'ns-rescan', `/dev/${c.name}`], { root: true, timeoutMs: 30_000 });
      // The controller's own answer is the size to wait for: the rescan updates sysfs later.
      const { stdout } = await runner.run(['nvme', 'id-ns', `/dev/${name}`, '-o', 'json'], {
        root: true,
        timeoutMs: 30_000,
      });
      const want = parseNvmeIdNs(stdout).sizeBytes;
      for (let i = 0; ; i++) {
        const size = await sizeOf(name);
        if (size === null) throw backendFailure(`${device.path} disappeared while being resized`);
        if (size === want) return size;
        if (i >= 100)
          throw timeout(`${device.path} shows ${size} bytes; the target reports ${want} after a rescan`);
        await sleep(100);
      }
    },

    async findDevices(info) {
      return (await namespaceDevices(target(info))).map(
        (name): AttachedDevice => ({ path: `/dev/${name}`, type: 'block' }),
      );
    },

    async deviceSize(device) {
      return sizeOf(deviceName(device.path));
    },
  };
}
