import type { HostConnector } from '../core/records.js';
import { backendFailure, conflict, invalidState } from '../util/errors.js';
import type { IscsiExportConfig } from './config.js';
import {
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

/** The LUN a volume gets on its tgt target: LUN 0 is tgtd's own controller. */
const LUN = 1;

/** One logical unit in `tgtadm --mode target --op show`. */
export interface TgtLun {
  lun: number;
  type: string;
  scsiId: string;
  scsiSn: string;
  online: boolean;
  readOnly: boolean;
  thin: boolean;
  backingStoreType: string;
  /** null for `None` (LUN 0). */
  backingStorePath: string | null;
}

/** One I_T nexus (an initiator's session) of a target. */
export interface TgtNexus {
  sid: number;
  initiator: string;
  connections: { cid: number; address: string }[];
}

/** One target in `tgtadm --mode target --op show`. */
export interface TgtTarget {
  tid: number;
  name: string;
  nexuses: TgtNexus[];
  luns: TgtLun[];
  /** Incoming CHAP accounts bound to the target, in tgtd's slot order. */
  accounts: string[];
  /** Initiator names and addresses allowed in (`--op bind`). */
  acls: string[];
}

/**
 * Parses `tgtadm --lld iscsi --mode target --op show` (tgt 1.0.x): a tree made by indentation,
 * four spaces a level. Unknown lines are skipped, so a newer tgt's extra fields do no harm.
 */
export function parseTgtTargets(text: string): TgtTarget[] {
  const targets: TgtTarget[] = [];
  let t: TgtTarget | undefined;
  let section = '';
  let lun: TgtLun | undefined;
  let nexus: TgtNexus | undefined;
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    const indent = raw.length - raw.trimStart().length;
    const line = raw.trim();
    const head = /^Target (\d+): (\S+)$/.exec(line);
    if (indent === 0 && head) {
      t = { tid: Number(head[1]), name: head[2]!, nexuses: [], luns: [], accounts: [], acls: [] };
      targets.push(t);
      continue;
    }
    if (!t) continue;
    if (indent === 4) {
      section = line;
      continue;
    }
    const kv = /^([^:]+):\s?(.*)$/.exec(line);
    if (section === 'LUN information:') {
      if (indent === 8 && kv?.[1] === 'LUN') {
        lun = {
          lun: Number(kv[2]),
          type: '',
          scsiId: '',
          scsiSn: '',
          online: false,
          readOnly: false,
          thin: false,
          backingStoreType: '',
          backingStorePath: null,
        };
        t.luns.push(lun);
      } else if (lun && kv) setLunField(lun, kv[1]!, kv[2]!);
    } else if (section === 'I_T nexus information:') {
      if (indent === 8 && kv?.[1] === 'I_T nexus') {
        nexus = { sid: Number(kv[2]), initiator: '', connections: [] };
        t.nexuses.push(nexus);
      } else if (nexus && kv?.[1] === 'Initiator') {
        nexus.initiator = kv[2]!.replace(/ alias: .*$/, '');
      } else if (nexus && kv?.[1] === 'Connection') {
        nexus.connections.push({ cid: Number(kv[2]), address: '' });
      } else if (nexus && kv?.[1] === 'IP Address') {
        const c = nexus.connections.at(-1);
        if (c) c.address = kv[2]!;
      }
    } else if (section === 'Account information:' && indent === 8) {
      if (!line.endsWith(' (outgoing)')) t.accounts.push(line);
    } else if (section === 'ACL information:' && indent === 8) {
      t.acls.push(line);
    }
  }
  return targets;
}

function setLunField(lun: TgtLun, key: string, value: string): void {
  const yes = value === 'Yes';
  switch (key) {
    case 'Type':
      lun.type = value;
      break;
    case 'SCSI ID':
      lun.scsiId = value;
      break;
    case 'SCSI SN':
      lun.scsiSn = value;
      break;
    case 'Online':
      lun.online = yes;
      break;
    case 'Readonly':
      lun.readOnly = yes;
      break;
    case 'Thin-provisioning':
      lun.thin = yes;
      break;
    case 'Backing store type':
      lun.backingStoreType = value;
      break;
    case 'Backing store path':
      lun.backingStorePath = value === 'None' ? null : value;
      break;
  }
}

/** Parses `tgtadm --mode account --op show`: `Account list:` then one user a line. */
export function parseTgtAccounts(text: string): string[] {
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.endsWith(' (outgoing)'));
}

/**
 * The `tgt` iSCSI exporter: the userspace target daemon tgtd, driven with `tgtadm`. tgtd must
 * already run (started by the operator, e.g. `systemctl start tgt`, or `tgtd -C N` for another
 * control port); Cairn keeps no state of its own: it reads targets, LUNs, ACLs and accounts back
 * from `tgtadm --op show`. tgtd keeps its configuration in memory only, so exports do not
 * survive a restart of tgtd (they do survive a restart of Cairn).
 *
 * Per volume: target `<iqnPrefix>:<id>` with LUN 1 on the volume's file or block device
 * (`--bstype rdwr`, `thin_provisioning=1`: otherwise tgtd answers reads of holes by copying
 * zeros), its SCSI id and serial set from the volume id, access for the exported initiators
 * only, and with `chap`, one CHAP account per volume and initiator.
 *
 * CHAP secrets cannot be read back from tgtd, so exporting again to the same host gives that
 * host a new secret (the account is re-made); other hosts' secrets do not change. tgtd's LUN is
 * read-only or read-write for every host at once: exporting in the other mode while another
 * host holds the volume is refused.
 */
export async function createTgtExporter(config: IscsiExportConfig, ctx: ExporterContext): Promise<Exporter> {
  const control = String(config.tgtControlPort);

  /** Runs tgtadm; resolves with its exit code and message, never throws for exit 22 (EINVAL). */
  async function tgtadm(
    args: readonly string[],
    secrets: readonly string[] = [],
  ): Promise<{ code: number; stdout: string; message: string }> {
    const r = await ctx.runner.run(['tgtadm', '-C', control, '--lld', 'iscsi', ...args], {
      root: true,
      timeoutMs: 30_000,
      okExitCodes: [0, 22, 107, 111],
      secrets,
    });
    if (r.exitCode === 107 || r.exitCode === 111) {
      throw backendFailure(
        `backend ${ctx.backendName}: tgtd is not running on control port ${control} (start it, e.g. "tgtd -C ${control} --iscsi portal=IP:PORT"): ${r.stderr.trim()}`,
      );
    }
    return { code: r.exitCode, stdout: r.stdout, message: r.stderr.replace(/^tgtadm: /, '').trim() };
  }

  /** Runs tgtadm and fails unless it succeeded (or said one of the `okIf` messages). */
  async function must(args: readonly string[], okIf?: RegExp, secrets?: readonly string[]): Promise<void> {
    const r = await tgtadm(args, secrets);
    if (r.code !== 0 && !okIf?.test(r.message)) {
      const shown = args.join(' ').replace(/--password \S+/, '--password ***');
      throw backendFailure(`backend ${ctx.backendName}: "tgtadm ${shown}" failed: ${r.message}`);
    }
  }

  async function targets(): Promise<TgtTarget[]> {
    const r = await tgtadm(['--mode', 'target', '--op', 'show']);
    if (r.code !== 0) throw backendFailure(`tgtadm --op show failed: ${r.message}`);
    return parseTgtTargets(r.stdout);
  }

  const find = async (iqn: string) => (await targets()).find((t) => t.name === iqn);

  async function accounts(): Promise<string[]> {
    const r = await tgtadm(['--mode', 'account', '--op', 'show']);
    if (r.code !== 0) throw backendFailure(`tgtadm --mode account --op show failed: ${r.message}`);
    return parseTgtAccounts(r.stdout);
  }

  /**
   * Creates the target (not yet visible to anyone: no ACL). tids are handed out by us: the next
   * after the highest; another process taking it at the same moment makes tgtadm refuse, and we
   * look again.
   */
  async function createTarget(iqn: string): Promise<TgtTarget> {
    for (let attempt = 0; ; attempt++) {
      const all = await targets();
      const existing = all.find((t) => t.name === iqn);
      if (existing) return existing;
      const tid = Math.max(0, ...all.map((t) => t.tid)) + 1;
      const r = await tgtadm(['--mode', 'target', '--op', 'new', '--tid', String(tid), '--targetname', iqn]);
      if (r.code === 0) return { tid, name: iqn, nexuses: [], luns: [], accounts: [], acls: [] };
      if (!/already exists/.test(r.message) || attempt >= 10)
        throw backendFailure(`backend ${ctx.backendName}: could not create tgt target ${iqn}: ${r.message}`);
    }
  }

  /** Makes LUN 1 on the volume's path and sets its identity, provisioning and mode. */
  async function ensureLun(t: TgtTarget, target: ExportTarget, readOnly: boolean): Promise<void> {
    const tid = String(t.tid);
    const lun = t.luns.find((l) => l.lun === LUN);
    if (lun && lun.backingStorePath !== target.path) {
      throw conflict(
        `tgt target ${t.name} (tid ${tid}) serves ${lun.backingStorePath}, not volume ${target.volumeId}'s ${target.path}`,
      );
    }
    if (!lun) {
      // tgt 1.0.85 takes no --params with --op new: the identity is set by the update below,
      // before any initiator is let in.
      await must([
        ...['--mode', 'logicalunit', '--op', 'new', '--tid', tid, '--lun', String(LUN)],
        ...['--bstype', 'rdwr', '--backing-store', target.path],
      ]);
    }
    const serial = lunSerial(target.volumeId);
    const params: string[] = [];
    if (lun?.scsiId !== serial) params.push(`scsi_id=${serial}`);
    if (lun?.scsiSn !== serial) params.push(`scsi_sn=${serial}`);
    if (!lun?.thin) params.push('thin_provisioning=1');
    // A new LUN is read-write.
    if ((lun?.readOnly ?? false) !== readOnly) params.push(`readonly=${readOnly ? 1 : 0}`);
    if (params.length > 0) {
      await must([
        ...['--mode', 'logicalunit', '--op', 'update', '--tid', tid, '--lun', String(LUN)],
        ...['--params', params.join(',')],
      ]);
    }
  }

  /**
   * Unbinds account `user` from the target. tgt (1.0.85 to 1.0.97 at least) keeps bound accounts
   * in an array it walks only up to their count: unbinding one from the middle leaves a hole
   * that makes the accounts after it unusable and `--op show` crash tgtd (NULL dereference).
   * So the accounts after it are unbound last-first, and bound again afterwards.
   */
  async function unbindAccount(t: TgtTarget, user: string): Promise<void> {
    const i = t.accounts.indexOf(user);
    if (i < 0) return;
    const after = t.accounts.slice(i + 1);
    const unbind = (u: string) =>
      must(['--mode', 'account', '--op', 'unbind', '--tid', String(t.tid), '--user', u], /can't find/);
    for (const u of [...after].reverse()) await unbind(u);
    await unbind(user);
    for (const u of after)
      await must(['--mode', 'account', '--op', 'bind', '--tid', String(t.tid), '--user', u]);
    t.accounts = t.accounts.filter((u) => u !== user);
  }

  async function deleteAccount(t: TgtTarget | undefined, user: string): Promise<void> {
    if (t) await unbindAccount(t, user);
    await must(['--mode', 'account', '--op', 'delete', '--user', user], /can't find the account/);
  }

  /** A fresh secret for `user`, bound to the target: tgtd cannot show the old one. */
  async function resetAccount(t: TgtTarget, user: string): Promise<string> {
    const password = newChapPassword();
    if ((await accounts()).includes(user)) await deleteAccount(t, user);
    await must(['--mode', 'account', '--op', 'new', '--user', user, '--password', password], undefined, [
      password,
    ]);
    await must(['--mode', 'account', '--op', 'bind', '--tid', String(t.tid), '--user', user]);
    t.accounts.push(user);
    return password;
  }

  /** Deletes the target (closing any session) and the CHAP accounts it used. */
  async function removeTarget(t: TgtTarget): Promise<void> {
    await must(
      ['--mode', 'target', '--op', 'delete', '--force', '--tid', String(t.tid)],
      /can't find the target/,
    );
    // With the target gone no slot holds them, so deleting cannot leave holes.
    for (const user of t.accounts.filter((u) => u.startsWith('cairn-'))) await deleteAccount(undefined, user);
  }

  return {
    protocol: 'iscsi',

    validateConnector(connector: HostConnector) {
      requireInitiator(connector);
    },

    async export(target, connector, mode) {
      const initiator = requireInitiator(connector);
      validateBackingPath(target.path);
      const iqn = targetIqn(config, target.volumeId);
      const readOnly = mode === 'ro';
      const t = await createTarget(iqn);
      const others = t.acls.filter((a) => a !== initiator);
      const lun = t.luns.find((l) => l.lun === LUN);
      if (lun && lun.readOnly !== readOnly && others.length > 0) {
        throw invalidState(
          `volume ${target.volumeId} is exported ${lun.readOnly ? 'read-only' : 'read-write'} to ${others.join(', ')}; tgt cannot export it ${mode} to another host at the same time`,
        );
      }
      await ensureLun(t, target, readOnly);
      const chap = config.chap ? { username: chapUsername(target.volumeId, initiator), password: '' } : null;
      if (chap) chap.password = await resetAccount(t, chap.username);
      // Last: the initiator is let in once everything it will see is in place.
      if (!t.acls.includes(initiator)) {
        await must(
          ['--mode', 'target', '--op', 'bind', '--tid', String(t.tid), '--initiator-name', initiator],
          /already exists/,
        );
      }
      return iscsiConnectionInfo({
        config,
        volumeId: target.volumeId,
        iqn,
        lun: LUN,
        readOnly,
        multipath: connector.multipath === true,
        chap,
      });
    },

    async unexport(target, _info, connector) {
      // Works from the volume and the connector alone: the info may be from an interrupted
      // connect that never recorded one.
      if (connector.initiator === undefined) return;
      const initiator = validateInitiatorName(connector.initiator);
      const t = await find(targetIqn(config, target.volumeId));
      if (!t) return;
      const tid = String(t.tid);
      if (t.acls.includes(initiator)) {
        await must(
          ['--mode', 'target', '--op', 'unbind', '--tid', tid, '--initiator-name', initiator],
          /does not exist/,
        );
      }
      if (t.acls.every((a) => a === initiator)) return removeTarget(t);
      // tgtd keeps a logged-in session when its initiator leaves the ACL: close it.
      for (const n of t.nexuses.filter((x) => x.initiator === initiator)) {
        for (const c of n.connections) {
          await must(
            [
              '--mode',
              'conn',
              '--op',
              'delete',
              '--tid',
              tid,
              '--sid',
              String(n.sid),
              '--cid',
              String(c.cid),
            ],
            /can't find/,
          );
        }
      }
      const user = chapUsername(target.volumeId, initiator);
      if (t.accounts.includes(user) || (await accounts()).includes(user)) await deleteAccount(t, user);
    },

    async remove(volumeId) {
      const t = await find(targetIqn(config, volumeId));
      if (t) await removeTarget(t);
    },

    async resize(target) {
      const t = await find(targetIqn(config, target.volumeId));
      const lun = t?.luns.find((l) => l.lun === LUN);
      if (!t || !lun?.backingStorePath) return;
      // tgtd reads the size when it opens the backing store. One update takes the LUN offline,
      // reopens the path (new size) and puts it online again: tgtd handles it in one turn of its
      // event loop, so initiators never see the LUN offline. They see the new capacity on rescan.
      await must([
        ...['--mode', 'logicalunit', '--op', 'update', '--tid', String(t.tid), '--lun', String(LUN)],
        ...['--params', `online=0,path=${validateBackingPath(lun.backingStorePath)}`],
      ]);
    },

    async close() {},
  };
}
