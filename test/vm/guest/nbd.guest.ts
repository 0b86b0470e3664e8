// Runs INSIDE the test VM (test/vm/nvme-nbd.test.ts): the NBD exporter (qemu-nbd in the guest)
// and the NBD connector on the guest kernel's NBD client.
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, stat, truncate } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNbdConnector } from '../../../src/connectors/nbd.js';
import type { ConnectionInfo } from '../../../src/core/records.js';
import { createRunner } from '../../../src/exec/runner.js';
import { exportConfigSchema, type NbdExportConfig } from '../../../src/exports/config.js';
import { createNbdExporter } from '../../../src/exports/nbd.js';
import type { Exporter, ExportTarget } from '../../../src/exports/spi.js';
import { Cairn } from '../../../src/index.js';
import { ErrorCode } from '../../../src/util/errors.js';
import { silentLogger } from '../../../src/util/logger.js';
import { rejectsWith } from '../../harness/assert.js';
import { run } from '../../harness/exec.js';
import { roundTrip as directRoundTrip, fileVolume as makeFileVolume } from './io.js';

const MiB = 1024 * 1024;
const DIR = '/tmp/cairn-nbd';
const runner = createRunner({ logger: silentLogger });
const connector = createNbdConnector(runner);
const host = { host: 'cairn-vm' };
const since = (t0: number) => `${Math.round(performance.now() - t0)} ms`;
let exporter: Exporter;
const volumes: string[] = [];

before(async () => {
  await mkdir(DIR, { recursive: true });
  const config = exportConfigSchema.parse({
    protocol: 'nbd',
    address: '127.0.0.1',
    ports: [10809, 10830],
  }) as NbdExportConfig;
  exporter = await createNbdExporter(config, { backendName: 'nbd-vm', runner, logger: silentLogger });
});
after(async () => {
  for (const v of volumes) await exporter.remove(v).catch(() => {});
  await rm(DIR, { recursive: true, force: true });
});

async function fileVolume(size = 32 * MiB): Promise<ExportTarget> {
  const v = await makeFileVolume(DIR, size);
  volumes.push(v.volumeId);
  return v;
}

const roundTrip = (device: string, offsetMiB: number) => directRoundTrip(DIR, device, offsetMiB);

const pidOf = (dev: string) =>
  readFile(`/sys/block/${basename(dev)}/pid`, 'utf8').then(
    (p) => p.trim(),
    () => null,
  );

describe('NBD exporter (qemu-nbd) + NBD connector (guest kernel)', () => {
  test('attach, data round trip, extend refused while attached, detach, unexport', async (t) => {
    const v = await fileVolume();
    let t0 = performance.now();
    const info = await exporter.export(v, host, 'rw');
    const exportMs = since(t0);
    t0 = performance.now();
    const dev = await connector.attach(info, { readOnly: false });
    const attachMs = since(t0);
    assert.match(dev.path, /^\/dev\/nbd\d+$/);
    assert.equal(await connector.deviceSize(dev), v.size);
    assert.deepEqual(await connector.findDevices(info), [dev]);
    assert.deepEqual(await connector.attach(info, { readOnly: false }), dev, 'attach again: the same device');
    const pattern = await roundTrip(dev.path, 2);
    assert.ok((await readFile(v.path)).subarray(2 * MiB, 3 * MiB).equals(pattern), 'the data is in the file');

    // NBD cannot grow a connected device: the exporter refuses, the device keeps its size.
    await truncate(v.path, 48 * MiB);
    await rejectsWith(exporter.resize({ ...v, size: 48 * MiB }), ErrorCode.InvalidState, 'detach');
    assert.equal(await connector.extend(info, dev), v.size);

    t0 = performance.now();
    await connector.detach(info, dev, { force: false });
    const detachMs = since(t0);
    assert.equal(await pidOf(dev.path), null, 'no client on the device');
    assert.equal(await connector.deviceSize(dev), null);
    assert.deepEqual(await connector.findDevices(info), []);
    await connector.detach(info, dev, { force: false }); // idempotent

    // Detached: now the export restarts at the new size, and a new attach sees it.
    await exporter.resize({ ...v, size: 48 * MiB });
    const again = await connector.attach(info, { readOnly: false });
    assert.equal(await connector.deviceSize(again), 48 * MiB);
    await roundTrip(again.path, 40);
    await connector.detach(info, again, { force: false });

    t0 = performance.now();
    await exporter.unexport(v, info, host);
    const unexportMs = since(t0);
    t.diagnostic(
      `nbd timings: export ${exportMs}, attach ${attachMs}, detach ${detachMs}, unexport ${unexportMs}`,
    );
  });

  test('read-only, a mounted device is not detached without force, parallel attaches get their own devices', async () => {
    const [a, b] = [await fileVolume(), await fileVolume()];
    const [infoA, infoB] = [await exporter.export(a, host, 'ro'), await exporter.export(b, host, 'rw')];
    const [devA, devB] = await Promise.all([
      connector.attach(infoA, { readOnly: true }),
      createNbdConnector(runner).attach(infoB, { readOnly: false }), // another instance: the lock file
    ]);
    assert.notEqual(devA.path, devB.path);
    assert.deepEqual(await connector.findDevices(infoA), [devA]);
    assert.deepEqual(await connector.findDevices(infoB), [devB]);
    assert.equal((await readFile(`/sys/block/${basename(devA.path)}/ro`, 'utf8')).trim(), '1');
    await assert.rejects(
      run(['dd', 'if=/dev/zero', `of=${devA.path}`, 'bs=4k', 'count=1', 'oflag=direct', 'status=none']),
      'a read-only device refuses writes',
    );

    await run(['mkfs.ext4', '-q', devB.path]);
    const mnt = join(DIR, 'mnt');
    await mkdir(mnt, { recursive: true });
    await run(['mount', devB.path, mnt]);
    try {
      await rejectsWith(connector.detach(infoB, devB, { force: false }), ErrorCode.InvalidState, 'in use');
    } finally {
      await run(['umount', mnt]);
    }
    // A device that serves another export now is left alone.
    await connector.detach(infoA, devB, { force: false });
    assert.notEqual(await pidOf(devB.path), null);

    await connector.detach(infoA, devA, { force: false });
    await connector.detach(infoB, devB, { force: false });
    await exporter.unexport(a, infoA, host);
    await exporter.unexport(b, infoB, host);
  });

  test('an unreachable server fails with TIMEOUT in bounded time; a wrong export name with NOT_FOUND', async () => {
    const info = (hostAddr: string, port: number, exportName: string): ConnectionInfo => ({
      protocol: 'nbd',
      data: { host: hostAddr, port, exportName, readOnly: false },
    });
    const t0 = performance.now();
    await rejectsWith(
      connector.attach(info('10.0.2.77', 10809, 'x'), { readOnly: false }),
      ErrorCode.Timeout,
    );
    const ms = performance.now() - t0;
    assert.ok(ms < 20_000, `gave up after ${Math.round(ms)} ms`);

    const v = await fileVolume();
    const real = await exporter.export(v, host, 'rw');
    await rejectsWith(
      connector.attach(info('127.0.0.1', real.data.port as number, 'no-such-export'), { readOnly: false }),
      ErrorCode.NotFound,
    );
    await exporter.remove(v.volumeId);
    await rejectsWith(connector.attach(real, { readOnly: false }), ErrorCode.BackendFailure, 'refused');
  });

  test('through the Cairn API: attach over NBD; growing is refused while attached, allowed after', async () => {
    const cairn = await Cairn.open({ state: 'memory:', lockDir: join(DIR, 'locks') });
    try {
      const pool = await cairn.addBackend('nbd', {
        driver: 'file',
        path: join(DIR, 'pool'),
        export: { protocol: 'nbd', address: '127.0.0.1', ports: [10840, 10849] },
      });
      const vol = await pool.createVolume({ size: '16MiB' });
      const conn = await vol.attach();
      assert.equal(conn.info.protocol, 'nbd');
      assert.match(conn.path ?? '', /^\/dev\/nbd\d+$/);
      await roundTrip(conn.path!, 1);
      // The backend reports no online extend: refused before anything changes, the file too.
      assert.equal(pool.capabilities.onlineExtend, false);
      await rejectsWith(vol.extend('32MiB'), ErrorCode.Unsupported, 'while it is connected');
      assert.equal((await vol.refresh()).size, 16 * MiB);
      assert.equal((await stat(join(DIR, 'pool', `volume-${vol.id}`))).size, 16 * MiB);
      await vol.detach();
      await vol.extend('32MiB');
      const again = await vol.attach();
      assert.equal(await connector.deviceSize({ path: again.path!, type: 'block' }), 32 * MiB);
      await vol.detach();
      await vol.delete();
    } finally {
      await cairn.close();
    }
  });
});
