import { mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionInfo } from '../core/records.js';
import type { CommandRunner } from '../exec/runner.js';
import {
  backendFailure,
  busy,
  ErrorCode,
  invalidArgument,
  invalidState,
  isCairnError,
  notFound,
  timeout,
} from '../util/errors.js';
import { hasCode } from '../util/fsx.js';
import { blockDeviceUsers } from './loop.js';
import type { AttachedDevice, Connector } from './spi.js';

const HOST = /^([A-Za-z0-9][A-Za-z0-9.-]{0,252}|[0-9a-fA-F:]{2,39})$/;
const EXPORT_NAME = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,254}$/;
const NBD = /^nbd\d+$/;
/** Kills a connect that hangs (a dropped SYN waits ~2 min in the kernel, a silent server forever). */
const CONNECT_TIMEOUT_MS = 15_000;
/** How long an attach waits for another process's attach to pick its device. */
const LOCK_WAIT_MS = 60_000;
/** Seconds before the kernel fails a request the server does not answer (then the device drops). */
const DEFAULT_IO_TIMEOUT_S = 30;

interface NbdTarget {
  host: string;
  port: number;
  exportName: string;
  readOnly: boolean;
  ioTimeoutS: number;
}

/** What an `nbd-client` process is connected to, from its command line. */
interface NbdClient {
  host: string;
  port: number;
  device: string;
  name: string;
}

function target(info: ConnectionInfo): NbdTarget {
  const d = info.data;
  const bad = (k: string): never => {
    throw invalidArgument(`nbd connection info: data.${k} is invalid (got ${JSON.stringify(d[k])})`);
  };
  const host = typeof d.host === 'string' && HOST.test(d.host) ? d.host : bad('host');
  const port =
    Number.isInteger(d.port) && (d.port as number) > 0 && (d.port as number) < 65536 ? d.port : bad('port');
  const name =
    typeof d.exportName === 'string' && EXPORT_NAME.test(d.exportName) ? d.exportName : bad('exportName');
  const t = d.ioTimeoutS === undefined ? DEFAULT_IO_TIMEOUT_S : d.ioTimeoutS;
  if (!Number.isInteger(t) || (t as number) < 1) bad('ioTimeoutS');
  return {
    host,
    port: port as number,
    exportName: name,
    readOnly: d.readOnly === true,
    ioTimeoutS: t as number,
  };
}

// nbd-client 3.24 options that take a value; the other options are flags.
const VALUED = new Set([
  '-N',
  '-name',
  '-b',
  '-block-size',
  '-t',
  '-timeout',
  '-B',
  '-size',
  '-F',
  '-certfile',
]);
for (const o of ['-K', '-keyfile', '-A', '-cacertfile', '-H', '-tlshostname']) VALUED.add(o);

/**
 * What an nbd-client command line connects: `nbd-client HOST [PORT] DEVICE -N NAME …`, options
 * anywhere. Null for other programs and for nbd-client's other modes (-d, -c, -l, nbdtab).
 */
function parseNbdClientArgs(argv: readonly string[]): NbdClient | null {
  if (basename(argv[0] ?? '') !== 'nbd-client') return null;
  const positional: string[] = [];
  let name = '';
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-N' || a === '-name') name = argv[++i] ?? '';
    else if (VALUED.has(a)) i++;
    else if (/^-(d|c|l|u|list|check|disconnect)$/.test(a)) return null;
    else if (!a.startsWith('-') && !a.includes('=')) positional.push(a);
  }
  if (positional.length < 2 || positional.length > 3) return null;
  const device = positional[positional.length - 1]!;
  const port = positional.length === 3 ? Number(positional[1]) : 10809;
  return { host: positional[0]!, port, device, name };
}

const read = (path: string) =>
  readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => null,
  );

/** The nbd-client serving device `nbdN`, from `/sys/block/nbdN/pid` and its /proc command line. */
async function clientOf(dev: string): Promise<NbdClient | null> {
  const pid = await read(`/sys/block/${dev}/pid`);
  if (!pid || !/^\d+$/.test(pid)) return null;
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  const client = raw ? parseNbdClientArgs(raw.split('\0').slice(0, -1)) : null;
  return client && client.device === `/dev/${dev}` ? client : null;
}

const matches = (c: NbdClient | null, t: NbdTarget) =>
  c !== null && c.host === t.host && c.port === t.port && c.name === t.exportName;

async function nbdDevices(): Promise<string[]> {
  const names = (await readdir('/sys/block').catch(() => [] as string[])).filter((n) => NBD.test(n));
  return names.sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
}

/**
 * Runs `fn` holding the host-wide NBD attach lock, `$CAIRN_RUN_DIR/nbd/attach.lock` (a file made
 * with O_EXCL holding the owner's pid; a dead owner's lock is taken over). It must cover choosing
 * the device and connecting it: nbd-client's ioctls on a device another client just set up
 * (NBD_CLEAR_SOCK, NBD_SET_SIZE) would break that other connection, not merely fail.
 */
async function withAttachLock<T>(fn: () => Promise<T>): Promise<T> {
  const dir = join(process.env.CAIRN_RUN_DIR || '/run/cairn', 'nbd');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lock = join(dir, 'attach.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (!hasCode(err, 'EEXIST')) throw err;
    }
    const owner = Number(await read(lock));
    const stale =
      owner > 0
        ? (await read(`/proc/${owner}/stat`)) === null
        : Date.now() - ((await stat(lock).catch(() => null))?.mtimeMs ?? Date.now()) > 5_000; // crashed mid-write
    if (stale) await unlink(lock).catch(() => {});
    else if (Date.now() > deadline)
      throw busy(`another attach (pid ${owner}) has held ${lock} for ${LOCK_WAIT_MS} ms`);
    else await sleep(50);
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => {});
  }
}

function nbdName(path: string): string {
  const name = basename(path);
  if (!NBD.test(name)) throw invalidArgument(`not an NBD device: ${JSON.stringify(path)}`);
  return name;
}

/**
 * The `nbd` protocol on this host, with the kernel's NBD client and `nbd-client` (3.24):
 *
 * `nbd-client HOST PORT /dev/nbdN -N EXPORT -timeout 30 -nonetlink [-readonly]`
 *
 * The ioctl interface (`-nonetlink`) keeps an nbd-client process per device for the life of the
 * connection, whose command line (found by `/sys/block/nbdN/pid`) says which export the device
 * serves: that is how devices are found, never by their number. The device is the lowest-numbered
 * one with no client and no size, chosen and connected under a host-wide lock file (see
 * {@link withAttachLock}); the command line is checked after the connect all the same, and a
 * device that turns out to be someone else's (a program that does not take the lock) is skipped.
 *
 * No `-persist`: when the connection breaks, the kernel fails the I/O in flight either way, and
 * the client exits and frees the device instead of reconnecting behind Cairn's back. A request the
 * server does not answer fails after 30 s (`-timeout`), which also drops the connection; a connect
 * is killed after 15 s (TIMEOUT). NBD cannot grow a connected device: `extend` returns the size
 * the device has (the exporter refuses to grow an attached volume).
 */
export function createNbdConnector(runner: CommandRunner): Connector {
  // Attaches in this process pick devices one at a time; other processes: see above.
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => {});
    return next;
  };

  async function devicesOf(t: NbdTarget): Promise<string[]> {
    const out: string[] = [];
    for (const dev of await nbdDevices()) if (matches(await clientOf(dev), t)) out.push(dev);
    return out;
  }

  async function freeDevice(skip: Set<string>): Promise<string | null> {
    for (const dev of await nbdDevices()) {
      if (skip.has(dev)) continue;
      if ((await read(`/sys/block/${dev}/pid`)) === null && (await read(`/sys/block/${dev}/size`)) === '0')
        return dev;
    }
    return null;
  }

  async function connect(t: NbdTarget, dev: string, readOnly: boolean): Promise<void> {
    const where = `${t.host}:${t.port}`;
    const argv = ['nbd-client', t.host, String(t.port), `/dev/${dev}`, '-N', t.exportName];
    argv.push('-timeout', String(t.ioTimeoutS), '-nonetlink');
    if (readOnly) argv.push('-readonly');
    try {
      await runner.run(argv, { root: true, timeoutMs: CONNECT_TIMEOUT_MS });
    } catch (err) {
      if (isCairnError(err, ErrorCode.Timeout))
        throw timeout(`NBD server ${where} did not answer within ${CONNECT_TIMEOUT_MS} ms`, { cause: err });
      const msg = (err as Error).message;
      if (/not present|unknown export/i.test(msg))
        throw notFound(`NBD server ${where} has no export ${t.exportName}`, { cause: err });
      if (/No route to host|Network is unreachable|timed out/i.test(msg))
        throw timeout(`NBD server ${where} is unreachable: ${msg}`, { cause: err });
      if (/Connection refused/i.test(msg))
        throw backendFailure(`nothing listens for NBD at ${where} (connection refused)`, { cause: err });
      throw err;
    }
  }

  /** Waits for the device's client to show up after nbd-client returned: ours, someone else's, or none. */
  async function ownerAfterConnect(dev: string): Promise<NbdClient | null> {
    for (let i = 0; i < 50; i++) {
      const c = await clientOf(dev);
      if (c) return c;
      await sleep(100);
    }
    return null;
  }

  async function attach(t: NbdTarget, readOnly: boolean): Promise<AttachedDevice> {
    const [existing] = await devicesOf(t);
    if (existing) return { path: `/dev/${existing}`, type: 'block' };
    if ((await nbdDevices()).length === 0)
      await runner.run(['modprobe', 'nbd'], { root: true, timeoutMs: 30_000 }).catch(() => {});
    const tried = new Set<string>();
    for (let attempt = 0; attempt < 4; attempt++) {
      const dev = await freeDevice(tried);
      if (!dev) break;
      tried.add(dev);
      await connect(t, dev, readOnly);
      if (matches(await ownerAfterConnect(dev), t)) return { path: `/dev/${dev}`, type: 'block' };
      // Someone outside the lock took this device between the check and the connect: the next one.
    }
    throw busy(
      tried.size === 0
        ? 'no free /dev/nbdN on this host (load the nbd module with a larger nbds_max)'
        : `could not attach NBD export ${t.exportName}: ${[...tried].join(', ')} were taken while connecting`,
    );
  }

  return {
    protocol: 'nbd',

    async attach(info, { readOnly }) {
      const t = target(info);
      return serialized(() => withAttachLock(() => attach(t, readOnly || t.readOnly)));
    },

    async detach(info, device, { force }) {
      const t = target(info);
      const dev = nbdName(device.path);
      // Gone already, or the number now serves someone else's export: nothing of ours to detach.
      if (!matches(await clientOf(dev), t)) return;
      if (!force) {
        const users = await blockDeviceUsers(dev);
        if (users.length > 0)
          throw invalidState(
            `${device.path} is in use (${users.join(', ')}); unmount it first, or detach with force`,
            {
              details: { device: device.path },
            },
          );
      }
      await runner.run(['nbd-client', '-d', `/dev/${dev}`], { root: true, timeoutMs: 30_000 });
      for (let i = 0; (await read(`/sys/block/${dev}/pid`)) !== null; i++) {
        if (i >= 100) throw timeout(`${device.path} still had a client 10 s after nbd-client -d`);
        await sleep(100);
      }
    },

    async extend(info, device) {
      const dev = nbdName(device.path);
      if (!matches(await clientOf(dev), target(info)))
        throw invalidState(
          `${device.path} is no longer attached to NBD export ${String(info.data.exportName)}`,
        );
      const size = await this.deviceSize(device);
      if (size === null) throw backendFailure(`${device.path} disappeared`);
      return size;
    },

    async findDevices(info) {
      return (await devicesOf(target(info))).map(
        (dev): AttachedDevice => ({ path: `/dev/${dev}`, type: 'block' }),
      );
    },

    async deviceSize(device) {
      const dev = nbdName(device.path);
      if ((await read(`/sys/block/${dev}/pid`)) === null) return null;
      const sectors = await read(`/sys/block/${dev}/size`);
      return sectors === null ? null : Number(sectors) * 512;
    },
  };
}
