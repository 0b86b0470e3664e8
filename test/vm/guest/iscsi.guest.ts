// Runs INSIDE the test VM (test/vm/iscsi.test.ts): the LIO and tgt exporters and the iSCSI
// connector against the guest kernel's own target (LIO), a tgtd started here, open-iscsi and
// dm-multipath. Two portals are two loopback addresses (127.0.0.1 and 127.0.0.2: all of
// 127/8 is local). Named *.guest.ts so that the host's test run never picks it up.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { access, mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createIscsiConnector } from '../../../src/connectors/iscsi.js';
import type { ConnectionInfo, HostConnector } from '../../../src/core/records.js';
import { createRunner } from '../../../src/exec/runner.js';
import { exportConfigSchema, type IscsiExportConfig } from '../../../src/exports/config.js';
import { lunSerial } from '../../../src/exports/iscsi-common.js';
import { createLioExporter } from '../../../src/exports/lio.js';
import type { ExportTarget } from '../../../src/exports/spi.js';
import { createTgtExporter } from '../../../src/exports/tgt.js';
import { Cairn } from '../../../src/index.js';
import { parseIscsiSessions } from '../../../src/parse/iscsiadm.js';
import { ErrorCode } from '../../../src/util/errors.js';
import { silentLogger } from '../../../src/util/logger.js';
import { rejectsWith } from '../../harness/assert.js';
import { run } from '../../harness/exec.js';
import { roundTrip as directRoundTrip, fileVolume as makeFileVolume } from './io.js';

const MiB = 1024 * 1024;
const LIO = '/sys/kernel/config/target';
const DIR = '/tmp/cairn-iscsi';
const P1 = '127.0.0.1:3260';
const P2 = '127.0.0.2:3260';
const TGT_PORTAL = '127.0.0.1:3270';
const TGT_CONTROL = 5;
const runner = createRunner({ logger: silentLogger });
const ctx = { backendName: 'iscsi-vm', runner, logger: silentLogger };
// Short bounds so the failure cases stay quick under emulation.
const connector = createIscsiConnector(runner, {
  loginTimeoutS: 5,
  loginRetries: 0,
  attachTimeoutMs: 60_000,
  multipathReplacementTimeoutS: 5,
});
const lioConfig = (portals: string[]) =>
  exportConfigSchema.parse({ protocol: 'iscsi', helper: 'lio', portals }) as IscsiExportConfig;
const tgtConfig = () =>
  exportConfigSchema.parse({
    protocol: 'iscsi',
    helper: 'tgt',
    portals: [TGT_PORTAL],
    tgtControlPort: TGT_CONTROL,
  }) as IscsiExportConfig;
const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );
const list = (p: string) => readdir(p).catch(() => [] as string[]);
const since = (t0: number) => Math.round(performance.now() - t0);

let host: HostConnector;
let tgtd: ChildProcess | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

before(async () => {
  await mkdir(DIR, { recursive: true });
  const initiator = /^InitiatorName=(\S+)/m.exec(
    await readFile('/etc/iscsi/initiatorname.iscsi', 'utf8'),
  )?.[1];
  host = { host: 'cairn-vm', initiator, multipath: true };
  // The operator's multipath configuration. No udev here: WWIDs come from sysfs
  // (uid_attribute ""); find_multipaths stays Debian's "strict" (the connector records WWIDs).
  await mkdir('/etc/multipath', { recursive: true });
  await writeFile('/etc/multipath.conf', 'defaults {\n  user_friendly_names no\n  uid_attribute ""\n}\n');
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await run(['iscsiadm', '-m', 'node', '--logoutall=all']).catch(() => {});
  await run(['multipath', '-F']).catch(() => {});
  if (tgtd) tgtd.kill('SIGKILL');
  await rm(DIR, { recursive: true, force: true });
});

const fileVolume = (size = 64 * MiB): Promise<ExportTarget> => makeFileVolume(DIR, size);

const roundTrip = (device: string, offsetMiB: number) => directRoundTrip(DIR, device, offsetMiB);

/** iSCSI sessions to `iqn` on this host. */
async function sessionsTo(iqn: string): Promise<string[]> {
  const out: string[] = [];
  for (const s of await list('/sys/class/iscsi_session')) {
    if ((await readFile(`/sys/class/iscsi_session/${s}/targetname`, 'utf8').catch(() => '')).trim() === iqn)
      out.push(s);
  }
  return out;
}

/** SCSI disks on this host whose unit serial is `serial`. */
async function disksWithSerial(serial: string): Promise<string[]> {
  const out: string[] = [];
  for (const b of await list('/sys/block')) {
    if (!b.startsWith('sd')) continue;
    const page = await readFile(`/sys/block/${b}/device/vpd_pg80`).catch(() => null);
    if (page?.subarray(4).toString('latin1').includes(serial)) out.push(b);
  }
  return out;
}

const multipathMaps = async () => {
  const maps: string[] = [];
  for (const b of await list('/sys/block')) {
    if (b.startsWith('dm-') && (await readFile(`/sys/block/${b}/dm/uuid`, 'utf8')).startsWith('mpath-'))
      maps.push(b);
  }
  return maps;
};

async function nodeRecords(iqn: string): Promise<number> {
  const r = await runner.run(['iscsiadm', '-m', 'node', '-T', iqn], { okExitCodes: [0, 21] });
  return r.exitCode === 21 ? 0 : r.stdout.split('\n').filter((l) => l.startsWith('node.name')).length;
}

async function assertClean(info: ConnectionInfo): Promise<void> {
  const iqn = info.data.targetIqn as string;
  assert.deepEqual(await sessionsTo(iqn), [], 'no session');
  const listed = await runner.run(['iscsiadm', '-m', 'session'], { okExitCodes: [0, 21] });
  assert.deepEqual(
    parseIscsiSessions(listed.stdout).filter((s) => s.target === iqn),
    [],
    'iscsiadm lists no session',
  );
  assert.deepEqual(await disksWithSerial(info.data.serial as string), [], 'no SCSI disk');
  assert.deepEqual(await multipathMaps(), [], 'no multipath map');
  assert.equal(await nodeRecords(iqn), 0, 'no node record');
  assert.deepEqual(await connector.findDevices(info), []);
}

describe('LIO exporter + iSCSI connector with two portals and dm-multipath', () => {
  test('attach, data, extend while attached, one portal down, detach, unexport', async (t) => {
    const exporter = await createLioExporter(lioConfig([P1, P2]), ctx);
    const v = await fileVolume();
    cleanups.push(() => exporter.remove(v.volumeId));
    const iqn = `iqn.2026-11.org.cairn:${v.volumeId}`;
    const tpg = `${LIO}/iscsi/${iqn}/tpgt_1`;

    let t0 = performance.now();
    const info = await exporter.export(v, host, 'rw');
    const exportMs = since(t0);
    assert.equal(info.data.targetIqn, iqn);
    assert.deepEqual(info.data.targetPortals, [P1, P2]);
    assert.equal(info.data.targetLun, 0);
    assert.equal(info.data.authMethod, 'CHAP');
    assert.deepEqual((await list(`${tpg}/np`)).sort(), [P1, P2]);
    assert.deepEqual(await list(`${tpg}/acls`), [host.initiator]);
    // Idempotent, and a restarted Cairn reads the same CHAP secret back from configfs.
    assert.deepEqual(await exporter.export(v, host, 'rw'), info);
    assert.deepEqual(await (await createLioExporter(lioConfig([P1, P2]), ctx)).export(v, host, 'rw'), info);

    t0 = performance.now();
    const dev = await connector.attach(info, { readOnly: false });
    const attachMs = since(t0);
    assert.match(dev.path, /^\/dev\/dm-\d+$/);
    const paths = await list(`/sys/block/${basename(dev.path)}/slaves`);
    assert.equal(paths.length, 2, `two paths under ${dev.path}: ${paths}`);
    assert.deepEqual(paths.sort(), (await disksWithSerial(lunSerial(v.volumeId))).sort());
    assert.equal(await connector.deviceSize(dev), v.size);
    assert.deepEqual(await connector.findDevices(info), [dev]);
    assert.deepEqual(await connector.attach(info, { readOnly: false }), dev, 'attach again: the same map');
    const pattern = await roundTrip(dev.path, 3);
    assert.ok((await readFile(v.path)).subarray(3 * MiB, 4 * MiB).equals(pattern), 'the data is in the file');

    // Grow the file, tell LIO, rescan: the map shows the new size while attached.
    await truncate(v.path, 96 * MiB);
    t0 = performance.now();
    await exporter.resize({ ...v, size: 96 * MiB });
    assert.equal(await connector.extend(info, dev), 96 * MiB);
    const extendMs = since(t0);
    assert.equal(await connector.deviceSize(dev), 96 * MiB);
    await roundTrip(dev.path, 90);

    // Mounted: detach refuses without force.
    await run(['mkfs.ext4', '-q', dev.path]);
    await mkdir(join(DIR, 'mnt'), { recursive: true });
    await run(['mount', dev.path, join(DIR, 'mnt')]);
    try {
      await rejectsWith(connector.detach(info, dev, { force: false }), ErrorCode.InvalidState, 'in use');
    } finally {
      await run(['umount', join(DIR, 'mnt')]);
    }

    // Portal 2 goes away: it stops listening and its connection is cut. I/O goes on over portal 1.
    await rm(`${tpg}/np/${P2}`, { recursive: false }).catch(() => run(['rmdir', `${tpg}/np/${P2}`]));
    await run(['ss', '-K', 'dst', '127.0.0.2', 'dport', '=', '3260']);
    t0 = performance.now();
    await roundTrip(dev.path, 10);
    const failoverMs = since(t0);
    // The session through portal 2 is down (recovering, or given up), the one through portal 1 works.
    const states = new Map<string, string>();
    for (const sid of await sessionsTo(iqn)) {
      const n = sid.replace('session', '');
      const addr = await readFile(`/sys/class/iscsi_connection/connection${n}:0/persistent_address`, 'utf8');
      states.set(addr.trim(), (await readFile(`/sys/class/iscsi_session/${sid}/state`, 'utf8')).trim());
    }
    assert.equal(states.get('127.0.0.1'), 'LOGGED_IN');
    assert.notEqual(states.get('127.0.0.2'), 'LOGGED_IN');
    const mapName = (await readFile(`/sys/block/${basename(dev.path)}/dm/name`, 'utf8')).trim();
    const mapStatus = (await run(['dmsetup', 'status', mapName])).trim();

    t0 = performance.now();
    await connector.detach(info, dev, { force: false });
    const detachMs = since(t0);
    await assertClean(info);
    await connector.detach(info, dev, { force: false }); // idempotent

    t0 = performance.now();
    await exporter.unexport(v, info, host);
    const unexportMs = since(t0);
    assert.ok(!(await exists(`${LIO}/iscsi/${iqn}`)), 'the target went with its last host');
    assert.deepEqual(
      await list(`${LIO}/core/fileio_3260`).then((l) => l.filter((n) => n.startsWith('cairn-'))),
      [],
    );
    t.diagnostic(
      `lio timings: export ${exportMs} ms, attach (2 paths + multipath) ${attachMs} ms, resize+extend ${extendMs} ms, I/O with a path down ${failoverMs} ms (map: ${mapStatus}), detach ${detachMs} ms, unexport ${unexportMs} ms`,
    );
  });

  test('read-only export: write-protected LUN, read-only device', async () => {
    const exporter = await createLioExporter(lioConfig([P1]), ctx);
    const v = await fileVolume(8 * MiB);
    cleanups.push(() => exporter.remove(v.volumeId));
    const info = await exporter.export(v, { ...host, multipath: false }, 'ro');
    assert.equal(info.data.readOnly, true);
    const dev = await connector.attach(info, { readOnly: true });
    assert.match(dev.path, /^\/dev\/sd[a-z]+$/);
    assert.equal((await readFile(`/sys/block/${basename(dev.path)}/ro`, 'utf8')).trim(), '1');
    await assert.rejects(
      run(['dd', 'if=/dev/zero', `of=${dev.path}`, 'bs=4k', 'count=1', 'oflag=direct', 'status=none']),
    );
    await connector.detach(info, dev, { force: false });
    await exporter.unexport(v, info, host);
    await assertClean(info);

    // Exported to another host only: LIO refuses this initiator (as "authorization failure",
    // like a wrong secret), and discovery, which lists only allowed targets, tells which it is.
    const other = { host: 'elsewhere', initiator: 'iqn.2026-11.org.cairn.test:elsewhere' };
    const otherInfo = await exporter.export(v, other, 'rw');
    const err = await rejectsWith(
      connector.attach(otherInfo, { readOnly: false }),
      ErrorCode.BackendFailure,
      'ACL',
    );
    assert.equal(err.details?.reason, 'acl');
    await assertClean(otherInfo);
  });
});

describe('tgt exporter (tgtd in the guest) + iSCSI connector: CHAP, ACL, failures', () => {
  let exporter: Awaited<ReturnType<typeof createTgtExporter>>;
  before(async () => {
    tgtd = spawn('tgtd', ['-f', '-C', String(TGT_CONTROL), '--iscsi', `portal=${TGT_PORTAL}`], {
      stdio: 'ignore',
    });
    for (let i = 0; ; i++) {
      const r = await runner.run(['tgtadm', '-C', String(TGT_CONTROL), '--mode', 'system', '--op', 'show'], {
        okExitCodes: [0, 107, 111],
      });
      if (r.exitCode === 0) break;
      if (i > 100) assert.fail('tgtd did not start');
      await sleep(100);
    }
    exporter = await createTgtExporter(tgtConfig(), ctx);
  });

  test('CHAP login finds the disk by serial; wrong secret, stranger, unreachable portal fail clearly', async (t) => {
    const v = await fileVolume(32 * MiB);
    cleanups.push(() => exporter.remove(v.volumeId));
    const single = { ...host, multipath: false };
    let t0 = performance.now();
    const info = await exporter.export(v, single, 'rw');
    const exportMs = since(t0);
    assert.equal(info.data.targetLun, 1);

    // A wrong secret: refused, with the reason and without the secret.
    const secret = 'Wr0ngSecretWr0ngSecret12';
    const wrong = { ...info, data: { ...info.data, authPassword: secret } };
    const err = await rejectsWith(
      connector.attach(wrong, { readOnly: false }),
      ErrorCode.BackendFailure,
      'CHAP',
    );
    assert.ok(!err.message.includes(secret), err.message);
    assert.equal(err.details?.reason, 'auth');
    assert.deepEqual(await sessionsTo(info.data.targetIqn as string), []);

    // The volume exported to another host's initiator: this one is not in the ACL.
    const other = { host: 'elsewhere', initiator: 'iqn.2026-11.org.cairn.test:elsewhere' };
    const v2 = await fileVolume(8 * MiB);
    cleanups.push(() => exporter.remove(v2.volumeId));
    const otherInfo = await exporter.export(v2, other, 'rw');
    const acl = await rejectsWith(
      connector.attach(otherInfo, { readOnly: false }),
      ErrorCode.BackendFailure,
      'ACL',
    );
    assert.equal(acl.details?.reason, 'acl');

    // Nobody listens there: a bounded TIMEOUT.
    const nowhere = {
      ...info,
      data: { ...info.data, targetPortals: ['127.0.0.3:3999'], targetPortal: '127.0.0.3:3999' },
    };
    t0 = performance.now();
    await rejectsWith(connector.attach(nowhere, { readOnly: false }), ErrorCode.Timeout, '127.0.0.3:3999');
    const unreachableMs = since(t0);
    assert.ok(unreachableMs < 30_000, `gave up after ${unreachableMs} ms`);
    assert.equal(await nodeRecords(info.data.targetIqn as string), 0, 'failed attaches leave no node record');

    t0 = performance.now();
    const dev = await connector.attach(info, { readOnly: false });
    const attachMs = since(t0);
    assert.match(dev.path, /^\/dev\/sd[a-z]+$/);
    assert.deepEqual(await disksWithSerial(lunSerial(v.volumeId)), [basename(dev.path)]);
    await roundTrip(dev.path, 5);

    // Grow while attached: tgtd reopens the file, the rescan shows it.
    await truncate(v.path, 48 * MiB);
    await exporter.resize({ ...v, size: 48 * MiB });
    assert.equal(await connector.extend(info, dev), 48 * MiB);

    // The target disappears (tgtd dies) while attached: a forced detach still cleans up.
    tgtd?.kill('SIGKILL');
    tgtd = undefined;
    t0 = performance.now();
    await connector.detach(info, dev, { force: true });
    const forcedMs = since(t0);
    await assertClean(info);
    t.diagnostic(
      `tgt timings: export ${exportMs} ms, attach ${attachMs} ms, unreachable portal gave up after ${unreachableMs} ms, forced detach of a dead target ${forcedMs} ms`,
    );
  });
});

describe('Cairn end to end: a file backend exporting over iSCSI (LIO)', () => {
  test('attach, write, extend, detach, delete', async (t) => {
    const cairn = await Cairn.open({ state: 'memory:', lockDir: join(DIR, 'locks') });
    try {
      const pool = await cairn.addBackend('pool', {
        driver: 'file',
        path: join(DIR, 'pool'),
        export: { protocol: 'iscsi', helper: 'lio', portals: [P1] },
      });
      const t0 = performance.now();
      const vol = await pool.createVolume({ size: '32MiB' });
      const conn = await vol.attach();
      const attachMs = since(t0);
      assert.match(conn.path ?? '', /^\/dev\/sd[a-z]+$/);
      assert.equal(conn.info.protocol, 'iscsi');
      assert.equal(JSON.stringify(conn.toJSON()).includes('authPassword'), false, 'no secret in toJSON');
      assert.equal(JSON.stringify(await cairn.dump()).includes(conn.info.data.authPassword as string), false);
      await roundTrip(conn.path!, 2);
      await vol.extend('48MiB');
      assert.equal(
        await readFile(`/sys/class/block/${basename(conn.path!)}/size`, 'utf8').then(Number),
        (48 * MiB) / 512,
      );
      await vol.detach();
      await vol.delete();
      assert.deepEqual(await list(`${LIO}/iscsi`).then((l) => l.filter((n) => n.includes(vol.id))), []);
      t.diagnostic(`cairn: create + attach over iSCSI ${attachMs} ms`);
    } finally {
      await cairn.close();
    }
  });
});
