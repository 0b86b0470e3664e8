import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { open, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionInfo, HostConnector } from '../../src/core/records.js';
import { createRunner } from '../../src/exec/runner.js';
import { chapUsername, lunSerial } from '../../src/exports/iscsi-common.js';
import type { Exporter, ExporterContext } from '../../src/exports/spi.js';
import { createTgtExporter, parseTgtAccounts, parseTgtTargets } from '../../src/exports/tgt.js';
import { ErrorCode } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { withoutSecrets } from '../../src/util/redact.js';
import { rejectsWith, throwsWith } from '../harness/assert.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

// The tgt exporter against a real tgtd on this host, checked from userspace with libiscsi's
// tools (iscsi-ls, iscsi-inq, iscsi-readcapacity16) and qemu-io's iscsi driver: this host's
// kernel has no iSCSI initiator. tgtd runs on its own control port and a random portal.

const MiB = 1024 * 1024;
const PREFIX = 'iqn.2026-11.org.cairn.test';
const HOST1: HostConnector = { host: 'h1', initiator: 'iqn.2026-11.org.cairn.test:host1', multipath: false };
const HOST2: HostConnector = { host: 'h2', initiator: 'iqn.2026-11.org.cairn.test:host2', multipath: true };
const STRANGER = 'iqn.2026-11.org.cairn.test:stranger';

interface Tgtd {
  control: number;
  port: number;
  proc: ChildProcess;
}

function exec(argv: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const tgtadm = (t: Tgtd, ...args: string[]) => exec(['tgtadm', '-C', String(t.control), ...args]);

/** Starts tgtd in the foreground on a random control port and portal; fails loudly if it cannot. */
async function startTgtd(): Promise<Tgtd> {
  const tools = ['tgtd', 'tgtadm', 'iscsi-ls', 'iscsi-inq', 'iscsi-readcapacity16', 'qemu-io'];
  const missing = [];
  for (const tool of tools)
    if ((await exec(['sh', '-c', `command -v ${tool}`])).code !== 0) missing.push(tool);
  assert.deepEqual(
    missing,
    [],
    'tgt, libiscsi-bin, qemu-utils and qemu-block-extra are needed (scripts/install-deps.sh)',
  );
  for (let attempt = 0; attempt < 5; attempt++) {
    const control = 20_000 + Math.floor(Math.random() * 20_000);
    const port = 30_000 + Math.floor(Math.random() * 20_000);
    const proc = spawn('tgtd', ['-f', '-C', String(control), '--iscsi', `portal=127.0.0.1:${port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const t = { control, port, proc };
    for (let i = 0; i < 100 && proc.exitCode === null; i++) {
      if ((await tgtadm(t, '--mode', 'system', '--op', 'show')).code === 0) return t;
      await sleep(50);
    }
    proc.kill('SIGKILL');
    if (attempt === 4) assert.fail(`tgtd did not start: ${stderr}`);
  }
  throw new Error('unreachable');
}

/** tgtd ignores SIGTERM: its targets are deleted, then it is told to exit. */
async function stopTgtd(t: Tgtd): Promise<void> {
  const shown = await tgtadm(t, '--lld', 'iscsi', '--mode', 'target', '--op', 'show');
  for (const target of parseTgtTargets(shown.stdout))
    await tgtadm(
      t,
      '--lld',
      'iscsi',
      '--mode',
      'target',
      '--op',
      'delete',
      '--force',
      '--tid',
      String(target.tid),
    );
  await tgtadm(t, '--mode', 'system', '--op', 'delete');
  for (let i = 0; i < 100 && t.proc.exitCode === null && t.proc.signalCode === null; i++) await sleep(50);
  if (t.proc.exitCode === null && t.proc.signalCode === null) t.proc.kill('SIGKILL');
  // tgtd leaves its control socket behind.
  for (const f of [`socket.${t.control}`, `socket.${t.control}.lock`])
    await rm(join('/var/run/tgtd', f), { force: true });
}

let tgtd: Tgtd;
let dir: TempDir;
let exporter: Exporter;
let ctx: ExporterContext;
const config = (chap = true) => ({
  protocol: 'iscsi' as const,
  helper: 'tgt' as const,
  portals: [`127.0.0.1:${tgtd.port}`, `127.0.0.2:${tgtd.port}`],
  iqnPrefix: PREFIX,
  chap,
  tgtControlPort: tgtd.control,
});

const setUp = async () => {
  tgtd = await startTgtd();
  dir = await tempDir('cairn-tgt-');
  ctx = { backendName: 'tgt-test', runner: createRunner({ logger: silentLogger }), logger: silentLogger };
  exporter = await createTgtExporter(config(), ctx);
};
const tearDown = async () => {
  if (tgtd) await stopTgtd(tgtd);
  await dir?.cleanup();
};

async function volume(id: string, size = 64 * MiB) {
  const path = join(dir.path, `volume-${id}`);
  await writeFile(path, '');
  await truncate(path, size);
  return { volumeId: id, path, size };
}

/** A libiscsi URL of the export's LUN, with CHAP credentials when given. */
function url(info: ConnectionInfo, creds?: { user: string; password: string } | null): string {
  const d = info.data as { targetIqn: string; targetLun: number };
  const auth = creds ? `${creds.user}%${creds.password}@` : '';
  return `iscsi://${auth}127.0.0.1:${tgtd.port}/${d.targetIqn}/${d.targetLun}`;
}
const credsOf = (info: ConnectionInfo) => ({
  user: info.data.authUsername as string,
  password: info.data.authPassword as string,
});

async function capacity(
  info: ConnectionInfo,
  initiator: string,
  creds: { user: string; password: string } | null = credsOf(info),
) {
  const r = await exec(['iscsi-readcapacity16', '-i', initiator, url(info, creds)]);
  const size = /^Total size:(\d+)/m.exec(r.stdout)?.[1];
  return { ...r, size: size === undefined ? null : Number(size) };
}

async function serialOf(info: ConnectionInfo, initiator: string): Promise<string> {
  const r = await exec(['iscsi-inq', '-i', initiator, '-e', '1', '-c', '128', url(info, credsOf(info))]);
  assert.equal(r.code, 0, r.stderr);
  return /Unit Serial Number:\[\s*(\S+)\]/.exec(r.stdout)?.[1] ?? '';
}

/** Runs qemu-io commands on the LUN through qemu's iscsi driver (a userspace initiator). */
function qemuIoArgs(info: ConnectionInfo, initiator: string, cmds: string[], readOnly = false): string[] {
  const d = info.data as {
    targetIqn: string;
    targetLun: number;
    authUsername?: string;
    authPassword?: string;
  };
  const opts = [
    'driver=iscsi',
    'transport=tcp',
    `portal=127.0.0.1:${tgtd.port}`,
    `target=${d.targetIqn}`,
    `lun=${d.targetLun}`,
    `initiator-name=${initiator}`,
    ...(d.authUsername ? [`user=${d.authUsername}`, `password=${d.authPassword}`] : []),
  ].join(',');
  return ['qemu-io', ...(readOnly ? ['-r'] : []), '--image-opts', opts, ...cmds.flatMap((c) => ['-c', c])];
}

/** Runs qemu-io commands on the LUN through qemu's iscsi driver (a userspace initiator). */
const qemuIo = (info: ConnectionInfo, initiator: string, cmds: string[], readOnly = false) =>
  exec(qemuIoArgs(info, initiator, cmds, readOnly));

async function targetsShown() {
  return parseTgtTargets((await tgtadm(tgtd, '--lld', 'iscsi', '--mode', 'target', '--op', 'show')).stdout);
}
async function accountsShown() {
  return parseTgtAccounts((await tgtadm(tgtd, '--lld', 'iscsi', '--mode', 'account', '--op', 'show')).stdout);
}

describe('tgt exporter (real tgtd, libiscsi userspace initiator)', () => {
  before(setUp);
  after(tearDown);

  it('exports a file as LUN 1 with its size, serial, CHAP and this initiator only', async () => {
    const vol = await volume('vol-a');
    const t0 = performance.now();
    const info = await exporter.export(vol, HOST1, 'rw');
    const exportMs = performance.now() - t0;
    assert.ok(exportMs < 2_000, `export took ${exportMs} ms`);
    assert.equal(info.protocol, 'iscsi');
    assert.deepEqual(withoutSecrets(info.data), {
      targetIqn: `${PREFIX}:vol-a`,
      targetPortal: `127.0.0.1:${tgtd.port}`,
      targetPortals: [`127.0.0.1:${tgtd.port}`, `127.0.0.2:${tgtd.port}`],
      targetLun: 1,
      serial: lunSerial('vol-a'),
      readOnly: false,
      multipath: false,
      volumeId: 'vol-a',
      authMethod: 'CHAP',
      authUsername: chapUsername('vol-a', HOST1.initiator!),
    });
    assert.match(info.data.authPassword as string, /^[A-Za-z0-9_-]{24}$/);

    const ok = await capacity(info, HOST1.initiator!);
    assert.equal(ok.size, 64 * MiB, ok.stderr);
    assert.equal(await serialOf(info, HOST1.initiator!), lunSerial('vol-a'));
    const listed = await exec([
      'iscsi-ls',
      '-s',
      '-i',
      HOST1.initiator!,
      url(info, credsOf(info)).replace(/\/[^/]+\/\d+$/, ''),
    ]);
    assert.match(listed.stdout, /Lun:1\s+Type:DIRECT_ACCESS/);

    // CHAP is required, and must be right; other initiators are not let in at all.
    const none = await capacity(info, HOST1.initiator!, null);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr + none.stdout, /Authentication failure/);
    const wrong = await capacity(info, HOST1.initiator!, {
      user: credsOf(info).user,
      password: 'x'.repeat(24),
    });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr + wrong.stdout, /Authentication failure/);
    const stranger = await capacity(info, STRANGER);
    assert.notEqual(stranger.code, 0);
    assert.match(stranger.stderr + stranger.stdout, /Target not found/);

    // Data written through iSCSI lands in the file.
    const io = await qemuIo(info, HOST1.initiator!, ['write -P 0xab 1M 64k']);
    assert.equal(io.code, 0, io.stderr + io.stdout);
    const fh = await open(vol.path, 'r');
    const buf = Buffer.alloc(64 * 1024);
    await fh.read(buf, 0, buf.length, MiB);
    await fh.close();
    assert.ok(buf.every((b) => b === 0xab));

    const lun = (await targetsShown())
      .find((t) => t.name === `${PREFIX}:vol-a`)
      ?.luns.find((l) => l.lun === 1);
    assert.equal(lun?.thin, true);
    assert.equal(lun?.backingStoreType, 'rdwr');
    assert.equal(lun?.scsiSn, lunSerial('vol-a'));
  });

  it('exports read-only: the LUN is write-protected', async () => {
    const vol = await volume('vol-ro', 8 * MiB);
    const info = await exporter.export(vol, HOST1, 'ro');
    assert.equal(info.data.readOnly, true);
    const rw = await qemuIo(info, HOST1.initiator!, ['write -P 1 0 4k']);
    assert.notEqual(rw.code, 0);
    assert.match(rw.stderr + rw.stdout, /write protected/i);
    const ro = await qemuIo(info, HOST1.initiator!, ['read -P 0 0 4k'], true);
    assert.equal(ro.code, 0, ro.stderr + ro.stdout);
    // Back to read-write for the same (only) host.
    const again = await exporter.export(vol, HOST1, 'rw');
    assert.equal(again.data.readOnly, false);
    assert.equal((await qemuIo(again, HOST1.initiator!, ['write -P 1 0 4k'])).code, 0);
    await exporter.remove('vol-ro');
  });

  it('is idempotent and survives a new exporter (a restarted Cairn): same target, fresh secret', async () => {
    const vol = await volume('vol-a');
    const before = await targetsShown();
    const first = await exporter.export(vol, HOST1, 'rw');
    const restarted = await createTgtExporter(config(), ctx);
    const second = await restarted.export(vol, HOST1, 'rw');
    assert.deepEqual(withoutSecrets(second), withoutSecrets(first));
    // tgtd cannot show a CHAP secret: exporting again re-made the account with a new one.
    assert.notEqual(second.data.authPassword, first.data.authPassword);
    assert.equal((await capacity(second, HOST1.initiator!)).size, 64 * MiB);
    assert.notEqual((await capacity(first, HOST1.initiator!)).code, 0);
    const after = await targetsShown();
    assert.equal(after.length, before.length, 'no second target');
    assert.deepEqual(
      after.find((t) => t.name === `${PREFIX}:vol-a`)?.acls,
      [HOST1.initiator],
      'the ACL has the host once',
    );
  });

  it('gives each host its own secret; a host leaving keeps the other working (no tgtd crash)', async () => {
    const vol = await volume('vol-a');
    const h1 = await exporter.export(vol, HOST1, 'rw');
    const h2 = await exporter.export(vol, HOST2, 'rw');
    assert.equal(h2.data.multipath, true);
    assert.notEqual(h1.data.authUsername, h2.data.authUsername);
    assert.equal((await capacity(h1, HOST1.initiator!)).size, 64 * MiB);
    assert.equal((await capacity(h2, HOST2.initiator!)).size, 64 * MiB);
    await rejectsWith(
      exporter.export(vol, HOST2, 'ro'),
      ErrorCode.InvalidState,
      'read-write',
      HOST1.initiator!,
    );

    // host1's account is bound first: unbinding it must not leave a hole in tgtd's table.
    await exporter.unexport(vol, h1, HOST1);
    const t = (await targetsShown()).find((x) => x.name === `${PREFIX}:vol-a`);
    assert.deepEqual(t?.acls, [HOST2.initiator]);
    assert.deepEqual(t?.accounts, [h2.data.authUsername]);
    assert.equal((await capacity(h2, HOST2.initiator!)).size, 64 * MiB);
    assert.notEqual((await capacity(h1, HOST1.initiator!)).code, 0);
    assert.ok(!(await accountsShown()).includes(h1.data.authUsername as string));
    await exporter.unexport(vol, h1, HOST1); // again: nothing to do
  });

  it('resizes: the initiator sees the new capacity, identity and thin provisioning kept', async () => {
    const vol = await volume('vol-a');
    const info = await exporter.export(vol, HOST2, 'rw');
    await truncate(vol.path, 96 * MiB);
    const t0 = performance.now();
    await exporter.resize({ ...vol, size: 96 * MiB });
    const ms = performance.now() - t0;
    assert.equal((await capacity(info, HOST2.initiator!)).size, 96 * MiB);
    assert.equal(await serialOf(info, HOST2.initiator!), lunSerial('vol-a'));
    const lun = (await targetsShown())
      .find((t) => t.name === `${PREFIX}:vol-a`)
      ?.luns.find((l) => l.lun === 1);
    assert.equal(lun?.thin, true);
    assert.ok(ms < 1_000, `resize took ${ms} ms`);
    await exporter.resize({ volumeId: 'not-exported', path: '/nonexistent', size: MiB }); // nothing to do
  });

  it('closes the session of a host that leaves, and removes the target with its last host', async () => {
    const vol = await volume('vol-a');
    const h1 = await exporter.export(vol, HOST1, 'rw');
    const h2 = await exporter.export(vol, HOST2, 'rw');
    // host2 holds a session open (qemu-io sleeping) while it is unexported.
    const [cmd, ...args] = qemuIoArgs(h2, HOST2.initiator!, ['sleep 20000']);
    const holding = spawn(cmd!, args, { stdio: 'ignore' });
    let t: Awaited<ReturnType<typeof targetsShown>>[number] | undefined;
    for (let i = 0; i < 50; i++) {
      t = (await targetsShown()).find((x) => x.name === `${PREFIX}:vol-a`);
      if (t?.nexuses.some((n) => n.initiator === HOST2.initiator)) break;
      await sleep(50);
    }
    assert.ok(t?.nexuses.some((n) => n.initiator === HOST2.initiator && n.connections.length > 0));
    await exporter.unexport(vol, h2, HOST2);
    t = (await targetsShown()).find((x) => x.name === `${PREFIX}:vol-a`);
    assert.ok(!t?.nexuses.some((n) => n.initiator === HOST2.initiator), 'host2 session closed');
    holding.kill('SIGKILL'); // libiscsi would keep trying to log in again

    await exporter.unexport(vol, h1, HOST1);
    assert.equal(
      (await targetsShown()).find((x) => x.name === `${PREFIX}:vol-a`),
      undefined,
    );
    assert.deepEqual(
      (await accountsShown()).filter((a) => a.startsWith('cairn-')),
      [],
      'no account left',
    );
  });

  it('remove takes every host away; it and unexport are idempotent', async () => {
    const vol = await volume('vol-b');
    const h1 = await exporter.export(vol, HOST1, 'rw');
    await exporter.export(vol, HOST2, 'rw');
    await exporter.remove('vol-b');
    await exporter.remove('vol-b');
    await exporter.unexport(vol, h1, HOST1);
    assert.deepEqual(
      (await targetsShown()).map((t) => t.name),
      [],
    );
    assert.deepEqual(await accountsShown(), []);
  });

  it('exports without CHAP when chap is off', async () => {
    const plain = await createTgtExporter(config(false), ctx);
    const vol = await volume('vol-c', 8 * MiB);
    const info = await plain.export(vol, HOST1, 'rw');
    assert.equal(info.data.authMethod, undefined);
    assert.equal((await capacity(info, HOST1.initiator!, null)).size, 8 * MiB);
    assert.notEqual((await capacity(info, STRANGER, null)).code, 0);
    await plain.remove('vol-c');
  });

  it('refuses connectors without a valid initiator, and says when tgtd is not running', async () => {
    throwsWith(
      () => exporter.validateConnector({ host: 'x' }),
      ErrorCode.InvalidArgument,
      'connector.initiator',
    );
    throwsWith(
      () => exporter.validateConnector({ host: 'x', initiator: 'iqn.2026-11.x:a,b' }),
      ErrorCode.InvalidArgument,
      'initiator',
    );
    const vol = await volume('vol-d', MiB);
    await rejectsWith(
      exporter.export({ ...vol, path: '/tmp/a,b' }, HOST1, 'rw'),
      ErrorCode.InvalidArgument,
      'commas',
    );
    const down = await createTgtExporter({ ...config(), tgtControlPort: tgtd.control + 1 }, ctx);
    await rejectsWith(down.export(vol, HOST1, 'rw'), ErrorCode.BackendFailure, 'tgtd is not running');
  });
});

describe('parseTgtTargets', () => {
  it('reads targets, LUNs, sessions, accounts and ACLs', () => {
    const text = [
      'Target 3: iqn.2026-11.org.cairn:v1',
      '    System information:',
      '        Driver: iscsi',
      '        State: ready',
      '    I_T nexus information:',
      '        I_T nexus: 4',
      '            Initiator: iqn.1994-05.com.example:x alias: none',
      '            Connection: 0',
      '                IP Address: 127.0.0.1',
      '    LUN information:',
      '        LUN: 0',
      '            Type: controller',
      '            Backing store path: None',
      '        LUN: 1',
      '            Type: disk',
      '            SCSI ID: 0123',
      '            SCSI SN: 4567',
      '            Readonly: Yes',
      '            Thin-provisioning: Yes',
      '            Backing store type: rdwr',
      '            Backing store path: /srv/v1',
      '    Account information:',
      '        u1',
      '        u2 (outgoing)',
      '    ACL information:',
      '        iqn.1994-05.com.example:x',
      '',
    ].join('\n');
    const [t] = parseTgtTargets(text);
    assert.equal(t?.tid, 3);
    assert.deepEqual(t?.nexuses, [
      { sid: 4, initiator: 'iqn.1994-05.com.example:x', connections: [{ cid: 0, address: '127.0.0.1' }] },
    ]);
    assert.deepEqual(t?.accounts, ['u1']);
    assert.deepEqual(t?.acls, ['iqn.1994-05.com.example:x']);
    assert.equal(t?.luns[0]?.backingStorePath, null);
    assert.deepEqual(t?.luns[1], {
      lun: 1,
      type: 'disk',
      scsiId: '0123',
      scsiSn: '4567',
      online: false,
      readOnly: true,
      thin: true,
      backingStoreType: 'rdwr',
      backingStorePath: '/srv/v1',
    });
    assert.deepEqual(parseTgtTargets(''), []);
    assert.deepEqual(parseTgtAccounts('Account list:\n    a\n    b (outgoing)\n'), ['a']);
  });
});
