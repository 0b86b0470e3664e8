import { access, readdir, readFile, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionInfo } from '../core/records.js';
import type { CommandRunner } from '../exec/runner.js';
import { IscsiExit, iscsiadmExitReason, parseIscsiTargets } from '../parse/iscsiadm.js';
import {
  backendFailure,
  type CairnError,
  conflict,
  ErrorCode,
  invalidArgument,
  invalidState,
  isCairnError,
  timeout,
} from '../util/errors.js';
import { maskSecrets } from '../util/redact.js';
import { blockDeviceUsers } from './loop.js';
import {
  createMultipathMap,
  failQueuedIo,
  isMultipathMap,
  multipathHolders,
  removeMultipathMap,
  resizeMultipathMap,
} from './multipath.js';
import type { AttachedDevice, Connector } from './spi.js';

/** Timeouts of the iSCSI connector. */
export interface IscsiConnectorOptions {
  /** One login attempt's bound (`node.conn[0].timeo.login_timeout`), seconds. Default 10. */
  loginTimeoutS?: number;
  /** Login retries after the first attempt (`node.session.initial_login_retry_max`). Default 1. */
  loginRetries?: number;
  /** The bound on a whole attach: logins, finding the disks, the multipath map. Default 120 s. */
  attachTimeoutMs?: number;
  /**
   * How long a multipath path's session may be down before its I/O fails over to another path
   * (`node.session.timeo.replacement_timeout`), seconds. Default 10. Single-path sessions keep
   * open-iscsi's default (120 s: I/O waits for the target to come back).
   */
  multipathReplacementTimeoutS?: number;
}

/** What the connector reads from the connection info (the exporters' shape, os-brick's names). */
interface IscsiTarget {
  iqn: string;
  portals: string[];
  lun: number;
  serial: string | null;
  /** The secret is null when the info came from a dump without secrets: enough to detach. */
  chap: { username: string; password: string | null } | null;
  multipath: boolean;
}

const PORTAL = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d{1,5}$/;
const IQN =
  /^(iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[A-Za-z0-9.:_-]+)?|eui\.[0-9a-fA-F]{16}|naa\.[0-9a-fA-F]{16,32})$/;
const CHAP_TEXT = /^[\x21-\x7e]{1,255}$/;

function parseInfo(info: ConnectionInfo): IscsiTarget {
  const d = info.data;
  const bad = (field: string, what: string): never => {
    throw invalidArgument(
      `iscsi connection info: data.${field} must be ${what} (got ${JSON.stringify(d[field])})`,
    );
  };
  const iqn =
    typeof d.targetIqn === 'string' && IQN.test(d.targetIqn)
      ? d.targetIqn
      : bad('targetIqn', 'an iSCSI name');
  const list = d.targetPortals ?? (d.targetPortal === undefined ? undefined : [d.targetPortal]);
  const portals =
    Array.isArray(list) && list.length > 0 && list.every((p) => typeof p === 'string' && PORTAL.test(p))
      ? (list as string[])
      : bad('targetPortals', 'a list of address:port');
  const lun =
    Number.isInteger(d.targetLun) && (d.targetLun as number) >= 0 && (d.targetLun as number) < 16384
      ? (d.targetLun as number)
      : bad('targetLun', 'a LUN number');
  const serial =
    d.serial === undefined
      ? null
      : typeof d.serial === 'string' && /^[\x21-\x7e]{1,64}$/.test(d.serial)
        ? d.serial
        : bad('serial', 'printable ASCII');
  let chap: IscsiTarget['chap'] = null;
  if (d.authMethod === 'CHAP') {
    const username =
      typeof d.authUsername === 'string' && CHAP_TEXT.test(d.authUsername)
        ? d.authUsername
        : bad('authUsername', 'a CHAP user name');
    const password = d.authPassword;
    if (password !== undefined && (typeof password !== 'string' || !CHAP_TEXT.test(password))) {
      // Never echo the secret, even a malformed one.
      throw invalidArgument('iscsi connection info: data.authPassword is malformed');
    }
    chap = { username, password: password ?? null };
  } else if (d.authMethod !== undefined && d.authMethod !== 'None') bad('authMethod', '"CHAP" or "None"');
  return { iqn, portals, lun, serial, chap, multipath: d.multipath === true };
}

/** An iSCSI session on this host, from /sys/class/iscsi_session. */
interface Session {
  sid: number;
  target: string;
  /** `address:port` as the portal was given (IPv6 in brackets). */
  portal: string;
  /** `LOGGED_IN` while it works; `FAILED` while it recovers from a lost connection. */
  state: string;
}

const SESSIONS = '/sys/class/iscsi_session';

async function sysRead(path: string): Promise<string | null> {
  return readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => null,
  );
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The sessions to target `iqn`. */
async function sessionsTo(iqn: string): Promise<Session[]> {
  const out: Session[] = [];
  for (const name of await readdir(SESSIONS).catch(() => [] as string[])) {
    const sid = Number(/^session(\d+)$/.exec(name)?.[1]);
    if (!Number.isInteger(sid) || (await sysRead(join(SESSIONS, name, 'targetname'))) !== iqn) continue;
    const conn = `/sys/class/iscsi_connection/connection${sid}:0`;
    const address = await sysRead(join(conn, 'persistent_address'));
    const port = await sysRead(join(conn, 'persistent_port'));
    const host = address?.includes(':') ? `[${address}]` : address;
    const state = (await sysRead(join(SESSIONS, name, 'state'))) ?? '';
    out.push({ sid, target: iqn, portal: address && port ? `${host}:${port}` : '', state });
  }
  return out;
}

/** The disks (`sdX`) of session `sid` at `lun`: sessionN/device/targetH:C:T/H:C:T:L/block/sdX. */
async function sessionDisks(sid: number, lun: number): Promise<string[]> {
  const dir = await realpath(join(SESSIONS, `session${sid}`, 'device')).catch(() => null);
  if (!dir) return [];
  const disks: string[] = [];
  for (const t of await readdir(dir).catch(() => [] as string[])) {
    if (!t.startsWith('target')) continue;
    for (const hctl of await readdir(join(dir, t)).catch(() => [] as string[])) {
      if (!/^\d+:\d+:\d+:\d+$/.test(hctl) || Number(hctl.split(':')[3]) !== lun) continue;
      disks.push(...(await readdir(join(dir, t, hctl, 'block')).catch(() => [])));
    }
  }
  return disks;
}

/** The unit serial (VPD page 0x80) the kernel read from a disk; null when it has none (yet). */
async function unitSerial(sd: string): Promise<string | null> {
  const page = await readFile(`/sys/block/${sd}/device/vpd_pg80`).catch(() => null);
  if (!page || page.length < 4) return null;
  // tgt pads the serial with leading blanks; LIO ends it with a NUL.
  return page
    .subarray(4, 4 + page.readUInt16BE(2))
    .toString('latin1')
    .replace(/^[\s\0]+|[\s\0]+$/g, '');
}

/** Every exit code: the callers read iscsiadm's exit code themselves. */
const ANY_EXIT = Array.from({ length: 256 }, (_, i) => i);

/**
 * The `iscsi` protocol with open-iscsi (like os-brick's ISCSIConnector): a node record for the
 * target on each portal (no sendtargets discovery: a portal would list, and iscsiadm record,
 * every target it serves), CHAP set on it, a login per portal with bounded timeouts, then the
 * LUN's disks found through sysfs by session and LUN number and checked against the unit serial
 * in the info, never taken by their order. With `multipath` in the info and two or more portals,
 * every portal is logged in (one that fails leaves the map degraded, as os-brick does) and the
 * disks are joined into a dm-multipath map, returned as `/dev/dm-N`; otherwise the first portal
 * that logs in gives one `/dev/sdX`.
 *
 * Needs `iscsiadm` (iscsid started by it or by systemd), `blockdev`, `tee`, and multipath-tools
 * for multipath. Every command runs through the runner, as root.
 */
export function createIscsiConnector(runner: CommandRunner, options: IscsiConnectorOptions = {}): Connector {
  const loginTimeoutS = options.loginTimeoutS ?? 10;
  const loginRetries = options.loginRetries ?? 1;
  const attachTimeoutMs = options.attachTimeoutMs ?? 120_000;
  const replacementS = options.multipathReplacementTimeoutS ?? 10;

  /** Runs iscsiadm; resolves with any exit code (a command timeout still rejects). */
  const iscsiadm = (args: readonly string[], opts: { timeoutMs?: number; secrets?: string[] } = {}) =>
    runner.run(['iscsiadm', ...args], {
      root: true,
      timeoutMs: opts.timeoutMs ?? 30_000,
      secrets: opts.secrets,
      okExitCodes: ANY_EXIT,
    });

  /** Runs iscsiadm and fails on exit codes other than 0 and the `ok` ones. */
  async function iscsiadmMust(
    args: readonly string[],
    ok: number[],
    opts: { timeoutMs?: number; secrets?: string[] } = {},
  ) {
    const r = await iscsiadm(args, opts);
    if (r.exitCode !== 0 && !ok.includes(r.exitCode)) {
      throw backendFailure(
        `"iscsiadm ${maskArgs(args, opts.secrets)}" failed (exit ${r.exitCode}: ${iscsiadmExitReason(r.exitCode)}): ${r.stderr.trim()}`,
        { details: { exitCode: r.exitCode } },
      );
    }
    return r;
  }

  /** Writes to a sysfs file as root (through the runner, so a root helper applies). */
  const sysWrite = (path: string, value: string, timeoutMs = 60_000) =>
    runner.run(['tee', path], { root: true, input: value, timeoutMs });

  /** Makes the node record of one portal and sets its login bounds and credentials. */
  async function configureNode(t: IscsiTarget, portal: string): Promise<void> {
    const node = ['-m', 'node', '-T', t.iqn, '-p', portal];
    await iscsiadmMust([...node, '-o', 'new'], []);
    const set: [string, string][] = [
      // Cairn logs in itself; a reboot must not bring back a volume it no longer tracks.
      ['node.startup', 'manual'],
      ['node.conn[0].timeo.login_timeout', String(loginTimeoutS)],
      ['node.session.initial_login_retry_max', String(loginRetries)],
      ['node.session.auth.authmethod', t.chap ? 'CHAP' : 'None'],
    ];
    // With other paths to fail over to, a lost path should give up its I/O quickly.
    if (t.multipath && t.portals.length > 1)
      set.push(['node.session.timeo.replacement_timeout', String(replacementS)]);
    if (t.chap?.password)
      set.push(
        ['node.session.auth.username', t.chap.username],
        ['node.session.auth.password', t.chap.password],
      );
    const secrets = secretsOf(t);
    await iscsiadmMust([...node, '-o', 'update', ...set.flatMap(([n, v]) => ['-n', n, '-v', v])], [], {
      secrets,
    });
  }

  /**
   * Why a login failed, in words. For a refused login, a discovery on the portal (not recorded:
   * `-o nonpersistent`) tells a target this initiator may not see (not in the ACL, or no such
   * target: both exporters list only the targets an initiator may use) from a wrong CHAP secret.
   */
  async function loginError(
    t: IscsiTarget,
    portal: string,
    code: number,
    stderr: string,
  ): Promise<CairnError> {
    const details = { exitCode: code, portal, target: t.iqn };
    if (code === IscsiExit.Transport || code === IscsiExit.TransportTimeout) {
      return timeout(
        `iSCSI portal ${portal} is unreachable: no login to ${t.iqn} within ${loginTimeoutS} s x ${loginRetries + 1} attempt(s)`,
        { details: { ...details, reason: 'unreachable' } },
      );
    }
    const plain = `iSCSI login to ${t.iqn} at ${portal} failed (${iscsiadmExitReason(code)}): ${maskArgs([stderr.trim()], secretsOf(t))}`;
    if (code !== IscsiExit.LoginAuthFailed && code !== IscsiExit.FatalLogin)
      return backendFailure(plain, { details });
    const d = await iscsiadm([
      '-m',
      'discovery',
      '-t',
      'sendtargets',
      '-p',
      portal,
      '-o',
      'nonpersistent',
    ]).catch(() => null);
    const listed =
      d && (d.exitCode === 0 || d.exitCode === IscsiExit.NoObjectsFound)
        ? parseIscsiTargets(d.stdout).some((x) => x.target === t.iqn)
        : null;
    if (listed === false) {
      return backendFailure(
        `iSCSI login to ${t.iqn} at ${portal} refused: initiator ${await initiatorName()} is not in the target's ACL, or the target is not there (was the volume exported to this host's connector?)`,
        { details: { ...details, reason: 'acl' } },
      );
    }
    if (code === IscsiExit.LoginAuthFailed) {
      return backendFailure(
        `iSCSI login to ${t.iqn} at ${portal} refused: CHAP authentication failed for user ${t.chap?.username ?? '(none given, and the target requires CHAP)'}: wrong or outdated secret`,
        { details: { ...details, reason: 'auth' } },
      );
    }
    return backendFailure(plain, { details });
  }

  async function login(t: IscsiTarget, portal: string, deadline: number): Promise<void> {
    await configureNode(t, portal);
    // open-iscsi's own bound on the login, plus room for iscsiadm and iscsid to start.
    const timeoutMs = Math.min(loginTimeoutS * (loginRetries + 1) * 1000 + 15_000, deadline - Date.now());
    if (timeoutMs <= 0) throw timeout(`attaching ${t.iqn} took longer than ${attachTimeoutMs} ms`);
    const secrets = secretsOf(t);
    const r = await iscsiadm(['-m', 'node', '-T', t.iqn, '-p', portal, '--login'], {
      timeoutMs,
      secrets,
    }).catch((err: unknown) => {
      if (!isCairnError(err, ErrorCode.Timeout)) throw err;
      throw timeout(`iSCSI login to ${t.iqn} at ${portal} did not finish within ${timeoutMs} ms`, {
        details: { portal, target: t.iqn, reason: 'unreachable' },
      });
    });
    if (r.exitCode !== 0 && r.exitCode !== IscsiExit.SessionExists)
      throw await loginError(t, portal, r.exitCode, r.stderr);
  }

  /** The LUN's disk in session `s`, once the kernel has read its serial; checked against the info's. */
  async function lunDisk(t: IscsiTarget, s: Session): Promise<string | null> {
    for (const sd of await sessionDisks(s.sid, t.lun)) {
      const serial = await unitSerial(sd);
      if (serial === null || !(await exists(`/dev/${sd}`))) continue;
      if (t.serial !== null && serial !== t.serial) {
        throw conflict(
          `${sd} (LUN ${t.lun} of ${t.iqn} at ${s.portal}) has unit serial ${serial}, not ${t.serial}: another volume is behind this target`,
        );
      }
      return sd;
    }
    return null;
  }

  /** Waits for the LUN's disk in each session to the logged-in portals (asks for a rescan once if slow). */
  async function waitForDisks(t: IscsiTarget, portals: string[], deadline: number): Promise<string[]> {
    const started = Date.now();
    let rescanned = false;
    for (;;) {
      const up = (await sessionsTo(t.iqn)).filter((s) => portals.includes(s.portal));
      const found: string[] = [];
      for (const s of up) {
        const sd = await lunDisk(t, s);
        if (sd) found.push(sd);
      }
      if (up.length >= portals.length && found.length === up.length) return found;
      if (Date.now() > deadline) {
        throw timeout(
          `logged in to ${t.iqn} at ${portals.join(', ')}, but LUN ${t.lun} showed ${found.length} disk(s) of ${portals.length} within ${attachTimeoutMs} ms`,
        );
      }
      if (!rescanned && Date.now() - started > 3_000) {
        rescanned = true;
        for (const s of up) await iscsiadm(['-m', 'session', '-r', String(s.sid), '--rescan']);
      }
      await sleep(100);
    }
  }

  /** Every disk of the LUN in this target's sessions, serial checked where readable. */
  async function targetDisks(t: IscsiTarget): Promise<{ sessions: Session[]; disks: string[] }> {
    const mine = await sessionsTo(t.iqn);
    const disks: string[] = [];
    for (const s of mine) {
      for (const sd of await sessionDisks(s.sid, t.lun)) {
        const serial = await unitSerial(sd);
        if (t.serial !== null && serial !== null && serial !== t.serial) {
          throw conflict(`${sd} (LUN ${t.lun} of ${t.iqn}) has unit serial ${serial}, not ${t.serial}`);
        }
        disks.push(sd);
      }
    }
    return { sessions: mine, disks };
  }

  /** The devices the host uses: the disks' multipath maps, and disks outside any map. */
  async function topDevices(disks: string[]): Promise<string[]> {
    const maps = new Set<string>();
    const bare: string[] = [];
    for (const sd of disks) {
      const held = await multipathHolders(sd);
      for (const m of held) maps.add(m);
      if (held.length === 0) bare.push(sd);
    }
    return [...maps, ...bare];
  }

  /** Who uses the devices besides their own maps: mounts, LVM, partitions, a path used on its own. */
  async function usersOf(tops: string[], disks: string[]): Promise<string[]> {
    const users: string[] = [];
    for (const dev of new Set([...tops, ...disks])) {
      for (const u of await blockDeviceUsers(dev)) {
        const holder = u.startsWith('held by ') ? u.slice('held by '.length) : null;
        if (holder !== null && tops.includes(holder)) continue;
        users.push(`/dev/${dev} ${u}`);
      }
    }
    return users;
  }

  /** Logs out of every session to the target and deletes its node records. */
  async function logoutAll(t: IscsiTarget, force: boolean): Promise<void> {
    const timeoutMs = force ? 20_000 : 60_000;
    const ok = [IscsiExit.NoObjectsFound, IscsiExit.SysfsLookup];
    for (const s of await sessionsTo(t.iqn)) {
      await iscsiadmMust(['-m', 'session', '-r', String(s.sid), '--logout'], ok, { timeoutMs }).catch(
        (err) => {
          if (!force) throw err;
        },
      );
    }
    await iscsiadmMust(['-m', 'node', '-T', t.iqn, '-o', 'delete'], ok, { timeoutMs }).catch((err) => {
      if (!force) throw err;
    });
    const left = await sessionsTo(t.iqn);
    if (left.length > 0) {
      throw backendFailure(
        `could not log out of ${t.iqn}: session(s) ${left.map((s) => `${s.sid} at ${s.portal}`).join(', ')} remain`,
      );
    }
  }

  /**
   * Detaches everything this host has of the target. Without force: refuses while used, flushes,
   * removes the multipath map, deletes the disks (their caches are synced while the sessions
   * still work), logs out. With force: a dead target must not block it, so queued I/O is failed
   * and nothing is flushed or deleted through a session that is not logged in; the logout takes
   * the disks away, and any left are deleted after.
   */
  async function detach(t: IscsiTarget, device: AttachedDevice, force: boolean): Promise<void> {
    const { sessions: mine, disks } = await targetDisks(t).catch(async (err: unknown) => {
      if (!force) throw err;
      return { sessions: await sessionsTo(t.iqn), disks: [] as string[] };
    });
    const tops = await topDevices(disks);
    if (!force) {
      const users = await usersOf(tops, disks);
      if (users.length > 0) {
        throw invalidState(
          `${device.path} is in use (${users.join(', ')}); unmount it first, or detach with force`,
          {
            details: { device: device.path },
          },
        );
      }
    }
    const healthy = mine.every((s) => s.state === 'LOGGED_IN');
    for (const dev of tops) {
      if (force && (await isMultipathMap(dev))) await failQueuedIo(runner, dev);
      if (force && !healthy) continue;
      await runner
        .run(['blockdev', '--flushbufs', `/dev/${dev}`], { root: true, timeoutMs: force ? 10_000 : 60_000 })
        .catch((err) => {
          if (!force) throw err;
        });
    }
    for (const dev of tops) if (await isMultipathMap(dev)) await removeMultipathMap(runner, dev, force);
    if (!force || healthy)
      for (const sd of disks) await sysWrite(`/sys/block/${sd}/device/delete`, '1').catch(() => {});
    await logoutAll(t, force);
    for (const sd of disks) {
      if (await exists(`/sys/block/${sd}`))
        await sysWrite(`/sys/block/${sd}/device/delete`, '1', 20_000).catch(() => {});
    }
  }

  return {
    protocol: 'iscsi',

    async attach(info, { readOnly }) {
      const t = parseInfo(info);
      if (t.chap?.password === null) {
        throw invalidArgument(
          'iscsi connection info: data.authPassword is missing (a connection loaded from a dump without secrets cannot attach; connect again)',
        );
      }
      const deadline = Date.now() + attachTimeoutMs;
      const multipath = t.multipath && t.portals.length > 1;
      // Attaching an attached target again returns its device; a failure then must not tear down
      // what was there before.
      const fresh = (await sessionsTo(t.iqn)).length === 0;
      const up: string[] = [];
      const errors: CairnError[] = [];
      try {
        for (const portal of t.portals) {
          try {
            await login(t, portal, deadline);
            up.push(portal);
          } catch (err) {
            if (!isCairnError(err)) throw err;
            errors.push(err);
            // Credentials and ACLs are the same on every portal: no use trying the others.
            if (err.details?.reason === 'auth' || err.details?.reason === 'acl') break;
          }
          if (!multipath && up.length > 0) break;
        }
        if (up.length === 0) throw errors.find((e) => e.details?.reason !== 'unreachable') ?? errors[0]!;
        const disks = await waitForDisks(t, up, deadline);
        const dev = multipath ? await createMultipathMap(runner, disks, deadline) : disks[0]!;
        if (readOnly) {
          for (const d of new Set([...disks, dev]))
            await runner.run(['blockdev', '--setro', `/dev/${d}`], { root: true, timeoutMs: 30_000 });
        }
        return { path: `/dev/${dev}`, type: 'block' };
      } catch (err) {
        // Leave nothing behind: no half-made map, session or node record.
        if (fresh) await detach(t, { path: '', type: 'block' }, true).catch(() => {});
        throw err;
      }
    },

    async detach(info, device, { force }) {
      if (device.path !== '' && !/^\/dev\/(sd[a-z]+|dm-\d+)$/.test(device.path))
        throw invalidArgument(`not an iSCSI disk or multipath device: ${JSON.stringify(device.path)}`);
      await detach(parseInfo(info), device, force);
    },

    async extend(info, device) {
      const t = parseInfo(info);
      const { sessions: mine, disks } = await targetDisks(t);
      if (disks.length === 0) throw invalidState(`${t.iqn} is not attached on this host`);
      for (const s of mine)
        await iscsiadmMust(['-m', 'session', '-r', String(s.sid), '--rescan'], [], { timeoutMs: 60_000 });
      const name = basename(device.path);
      if (await isMultipathMap(name)) await resizeMultipathMap(runner, name);
      const size = await this.deviceSize(device);
      if (size === null) throw backendFailure(`${device.path} disappeared while being resized`);
      return size;
    },

    async findDevices(info) {
      const { disks } = await targetDisks(parseInfo(info));
      return (await topDevices(disks)).map((d) => ({ path: `/dev/${d}`, type: 'block' as const }));
    },

    async deviceSize(device) {
      const sectors = await sysRead(`/sys/class/block/${basename(device.path)}/size`);
      return sectors === null ? null : Number(sectors) * 512;
    },
  };
}

/** The host's initiator name, for error messages. */
async function initiatorName(): Promise<string> {
  const text = await readFile('/etc/iscsi/initiatorname.iscsi', 'utf8').catch(() => '');
  return /^InitiatorName=(\S+)/m.exec(text)?.[1] ?? '(unknown)';
}

/** The strings to mask in commands and messages. */
function secretsOf(t: IscsiTarget): string[] {
  return t.chap?.password ? [t.chap.password] : [];
}

/** An argv for messages, with secrets masked. */
function maskArgs(args: readonly string[], secrets: readonly string[] = []): string {
  return maskSecrets(args.join(' '), secrets);
}
