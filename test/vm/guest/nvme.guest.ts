// Runs INSIDE the test VM (test/vm/nvme-nbd.test.ts): the nvmet exporter and the NVMe/TCP
// connector against the guest kernel's own target and initiator, over its loopback and eth0.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { access, mkdir, readdir, readFile, rm, truncate, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNvmeConnector } from '../../../src/connectors/nvme.js';
import type { ConnectionInfo, HostConnector } from '../../../src/core/records.js';
import { createRunner } from '../../../src/exec/runner.js';
import { exportConfigSchema, type NvmeofExportConfig } from '../../../src/exports/config.js';
import { createNvmetExporter } from '../../../src/exports/nvmet.js';
import type { ExportTarget } from '../../../src/exports/spi.js';
import { Cairn } from '../../../src/index.js';
import { ErrorCode } from '../../../src/util/errors.js';
import { silentLogger } from '../../../src/util/logger.js';
import { rejectsWith } from '../../harness/assert.js';
import { run } from '../../harness/exec.js';
import { roundTrip as directRoundTrip, fileVolume as makeFileVolume } from './io.js';

const MiB = 1024 * 1024;
const NVMET = '/sys/kernel/config/nvmet';
const DIR = '/tmp/cairn-nvme'; // tmpfs: the exporter opens files buffered there (no O_DIRECT)
const runner = createRunner({ logger: silentLogger });
const ctx = { backendName: 'nvme-vm', runner, logger: silentLogger };
const connector = createNvmeConnector(runner);
const config = (portals: string[]) =>
  exportConfigSchema.parse({ protocol: 'nvmeof', portals }) as NvmeofExportConfig;
const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );
const list = (p: string) => readdir(p).catch(() => [] as string[]);
const since = (t0: number) => `${Math.round(performance.now() - t0)} ms`;

let host: HostConnector;
const cleanups: Array<() => Promise<unknown>> = [];

before(async () => {
  await mkdir(DIR, { recursive: true });
  host = {
    host: 'cairn-vm',
    nqn: (await readFile('/etc/nvme/hostnqn', 'utf8')).trim(),
    hostId: (await readFile('/etc/nvme/hostid', 'utf8')).trim(),
  };
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await run(['nvme', 'disconnect-all']).catch(() => {});
  await rm(DIR, { recursive: true, force: true });
});

const fileVolume = (size = 64 * MiB): Promise<ExportTarget> => makeFileVolume(DIR, size);

const roundTrip = (device: string, offsetMiB: number) => directRoundTrip(DIR, device, offsetMiB);

/** Controllers of subsystem `nqn` on this host, with their states. */
async function controllers(nqn: string): Promise<Array<{ name: string; state: string }>> {
  const out = [];
  for (const name of await list('/sys/class/nvme')) {
    if ((await readFile(`/sys/class/nvme/${name}/subsysnqn`, 'utf8').catch(() => '')).trim() !== nqn)
      continue;
    out.push({
      name,
      state: (await readFile(`/sys/class/nvme/${name}/state`, 'utf8').catch(() => '')).trim(),
    });
  }
  return out;
}

async function waitFor(what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const nqnOf = (info: ConnectionInfo) => info.data.subsystemNqn as string;

describe('nvmet exporter + NVMe/TCP connector (guest kernel)', () => {
  test('attach finds the namespace by UUID; data, extend while attached, detach, unexport', async (t) => {
    const exporter = await createNvmetExporter(config(['127.0.0.1:4420']), ctx);
    const v = await fileVolume();
    cleanups.push(() => exporter.remove(v.volumeId));

    let t0 = performance.now();
    const info = await exporter.export(v, host, 'rw');
    const exportMs = since(t0);
    const nqn = `nqn.2026-11.org.cairn:${v.volumeId}`;
    assert.equal(info.protocol, 'nvmeof');
    assert.deepEqual(Object.keys(info.data).sort(), [
      'hostId',
      'hostNqn',
      'nguid',
      'nsid',
      'portals',
      'readOnly',
      'subsystemNqn',
      'transport',
      'uuid',
    ]);
    assert.equal(info.data.subsystemNqn, nqn);
    assert.deepEqual(info.data.portals, ['127.0.0.1:4420']);
    assert.equal(info.data.hostNqn, host.nqn);
    // The configfs state: no host but ours, our host linked, the namespace on the file.
    assert.equal((await readFile(`${NVMET}/subsystems/${nqn}/attr_allow_any_host`, 'utf8')).trim(), '0');
    assert.deepEqual(await list(`${NVMET}/subsystems/${nqn}/allowed_hosts`), [host.nqn]);
    assert.equal(
      (await readFile(`${NVMET}/subsystems/${nqn}/namespaces/1/device_path`, 'utf8')).trim(),
      v.path,
    );
    assert.equal((await readFile(`${NVMET}/subsystems/${nqn}/namespaces/1/buffered_io`, 'utf8')).trim(), '1');
    // Idempotent, and the same after a restart of Cairn (a new exporter: configfs is all it has).
    assert.deepEqual(await exporter.export(v, host, 'rw'), info);
    assert.deepEqual(
      await (await createNvmetExporter(config(['127.0.0.1:4420']), ctx)).export(v, host, 'rw'),
      info,
    );

    t0 = performance.now();
    const dev = await connector.attach(info, { readOnly: false });
    const attachMs = since(t0);
    assert.match(dev.path, /^\/dev\/nvme\d+n\d+$/);
    const name = basename(dev.path);
    assert.equal((await readFile(`/sys/class/block/${name}/uuid`, 'utf8')).trim(), info.data.uuid);
    assert.equal(await connector.deviceSize(dev), v.size);
    assert.deepEqual(await connector.findDevices(info), [dev]);
    assert.deepEqual(await connector.attach(info, { readOnly: false }), dev, 'attach again: the same device');

    const pattern = await roundTrip(dev.path, 3);
    const file = await readFile(v.path);
    assert.ok(file.subarray(3 * MiB, 4 * MiB).equals(pattern), 'the data is in the volume file');

    // Grow the file, tell nvmet, rescan: the attached device shows the new size.
    await truncate(v.path, 96 * MiB);
    await exporter.resize({ ...v, size: 96 * MiB });
    assert.equal(await connector.extend(info, dev), 96 * MiB);
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

    t0 = performance.now();
    await connector.detach(info, dev, { force: false });
    const detachMs = since(t0);
    assert.deepEqual(await controllers(nqn), []);
    assert.ok(!(await exists(dev.path)), `${dev.path} is gone`);
    await connector.detach(info, dev, { force: false }); // idempotent
    assert.deepEqual(await connector.findDevices(info), []);

    t0 = performance.now();
    await exporter.unexport(v, info, host);
    const unexportMs = since(t0);
    assert.ok(!(await exists(`${NVMET}/subsystems/${nqn}`)), 'the subsystem went with its last host');
    assert.ok(!(await exists(`${NVMET}/hosts/${host.nqn}`)), 'the unused host entry too');
    assert.deepEqual(await list(`${NVMET}/ports`), [], 'and the unused port');
    t.diagnostic(
      `nvme timings: export ${exportMs}, attach ${attachMs}, detach ${detachMs}, unexport ${unexportMs}`,
    );
  });

  test('two portals: one device over two paths (native multipath); I/O goes on when one drops', async (t) => {
    // A block device this time: nvmet opens it directly.
    const backing = await fileVolume(64 * MiB);
    const loop = (await run(['losetup', '--find', '--show', backing.path])).trim();
    cleanups.push(() => run(['losetup', '--detach', loop]));
    const v: ExportTarget = { volumeId: randomUUID(), path: loop, size: 64 * MiB };
    const portals = ['127.0.0.1:4420', '10.0.2.15:4421'];
    const exporter = await createNvmetExporter(config(portals), ctx);
    cleanups.push(() => exporter.remove(v.volumeId));
    const info = await exporter.export(v, host, 'rw');
    const nqn = nqnOf(info);
    assert.equal((await readFile('/sys/module/nvme_core/parameters/multipath', 'utf8')).trim(), 'Y');

    const t0 = performance.now();
    const dev = await connector.attach(info, { readOnly: false });
    t.diagnostic(`two-path attach ${since(t0)}`);
    const ctrls = await controllers(nqn);
    assert.equal(ctrls.length, 2, 'a controller per portal');
    assert.deepEqual(await connector.findDevices(info), [dev], 'one device for both');
    assert.equal(await connector.deviceSize(dev), 64 * MiB);
    await roundTrip(dev.path, 1);

    // The second portal goes away on the target: that path fails, I/O continues over the other.
    const ports = await list(`${NVMET}/ports`);
    assert.equal(ports.length, 2);
    const second = [];
    for (const id of ports)
      if ((await readFile(`${NVMET}/ports/${id}/addr_traddr`, 'utf8')).trim() === '10.0.2.15')
        second.push(id);
    await unlink(`${NVMET}/ports/${second[0]}/subsystems/${nqn}`);
    await waitFor('a path to leave the live state', async () =>
      (await controllers(nqn)).some((c) => c.state !== 'live'),
    );
    await roundTrip(dev.path, 5);
    // Exporting again repairs the export (the link comes back), and the path reconnects.
    await exporter.export(v, host, 'rw');
    await waitFor('both paths live again', async () => {
      const c = await controllers(nqn);
      return c.length === 2 && c.every((x) => x.state === 'live');
    });
    await roundTrip(dev.path, 9);

    await connector.detach(info, dev, { force: false });
    await exporter.remove(v.volumeId);
    assert.deepEqual(await list(`${NVMET}/ports`), [], 'both ports removed with their last subsystem');
  });

  test('read-only exports are refused, and a host NQN not allowed gets a clear error', async () => {
    const exporter = await createNvmetExporter(config(['127.0.0.1:4420']), ctx);
    const v = await fileVolume();
    cleanups.push(() => exporter.remove(v.volumeId));
    await rejectsWith(exporter.export(v, host, 'ro'), ErrorCode.Unsupported, 'read-only');
    assert.throws(() => exporter.validateConnector({ host: 'x' }), { code: ErrorCode.InvalidArgument });

    const info = await exporter.export(v, host, 'rw');
    const stranger = 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000001';
    const { hostId: _, ...data } = info.data;
    const err = await rejectsWith(
      connector.attach({ ...info, data: { ...data, hostNqn: stranger } }, { readOnly: false }),
      ErrorCode.BackendFailure,
      'not allowed',
      stranger,
    );
    assert.equal(err.details?.reason, 'host-not-allowed');
    assert.deepEqual(await controllers(nqnOf(info)), [], 'nothing left connected');
    await exporter.remove(v.volumeId);
  });

  test('an unreachable portal fails with TIMEOUT, in bounded time', async () => {
    const info: ConnectionInfo = {
      protocol: 'nvmeof',
      data: {
        transport: 'tcp',
        subsystemNqn: 'nqn.2026-11.org.cairn:nowhere',
        portals: ['10.0.2.77:4420'], // on the guest's subnet, but nobody answers ARP for it
        hostNqn: host.nqn!,
        nsid: 1,
        uuid: randomUUID(),
      },
    };
    const t0 = performance.now();
    await rejectsWith(connector.attach(info, { readOnly: false }), ErrorCode.Timeout, '10.0.2.77:4420');
    const ms = performance.now() - t0;
    assert.ok(ms < 35_000, `gave up after ${Math.round(ms)} ms`);
  });

  test('the target disappears while attached: detach with force succeeds and cleans up', async (t) => {
    const exporter = await createNvmetExporter(config(['127.0.0.1:4420']), ctx);
    const v = await fileVolume();
    cleanups.push(() => exporter.remove(v.volumeId));
    const info = await exporter.export(v, host, 'rw');
    const dev = await connector.attach(info, { readOnly: false });
    await run(['mkfs.ext4', '-q', dev.path]);
    const mnt = join(DIR, 'gone');
    await mkdir(mnt, { recursive: true });
    await run(['mount', dev.path, mnt]);

    await exporter.remove(v.volumeId); // the target side vanishes (subsystem, port, host)
    await waitFor('the controller to lose its target', async () =>
      (await controllers(nqnOf(info))).every((c) => c.state !== 'live'),
    );
    await rejectsWith(connector.detach(info, dev, { force: false }), ErrorCode.InvalidState, 'in use');
    const t0 = performance.now();
    await connector.detach(info, dev, { force: true });
    t.diagnostic(`forced detach from a vanished target ${since(t0)}`);
    assert.deepEqual(await controllers(nqnOf(info)), []);
    assert.deepEqual(await connector.findDevices(info), []);
    await run(['umount', '-l', mnt]).catch(() => {});
  });

  test('through the Cairn API: a file backend with an nvmeof export attaches, grows and deletes', async () => {
    const cairn = await Cairn.open({ state: 'memory:', lockDir: join(DIR, 'locks') });
    try {
      const pool = await cairn.addBackend('nvme', {
        driver: 'file',
        path: join(DIR, 'pool'),
        export: { protocol: 'nvmeof', portals: ['127.0.0.1:4420'] },
      });
      assert.deepEqual(pool.capabilities.protocols, ['nvmeof']);
      const vol = await pool.createVolume({ size: '32MiB' });
      const conn = await vol.attach();
      assert.equal(conn.info.protocol, 'nvmeof');
      assert.match(conn.path ?? '', /^\/dev\/nvme\d+n\d+$/);
      await roundTrip(conn.path!, 1);
      await vol.extend('48MiB'); // online: the driver grows the file, nvmet revalidates, the device follows
      assert.equal(await connector.deviceSize({ path: conn.path!, type: 'block' }), 48 * MiB);
      await vol.detach();
      assert.deepEqual(await controllers(nqnOf(conn.info)), []);
      await vol.delete();
      assert.ok(!(await exists(`${NVMET}/subsystems/${nqnOf(conn.info)}`)));
    } finally {
      await cairn.close();
    }
  });
});
