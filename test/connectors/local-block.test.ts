// The local connector with a block device as the volume (what the lvm driver exports: the LV's
// own device). The host has no device-mapper, so a loop device plays the LV here; the VM tier
// (test/vm/guest/lvm.guest.ts) does the same with real LVs.
import assert from 'node:assert/strict';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalConnector } from '../../src/connectors/local.js';
import type { ConnectionInfo } from '../../src/core/records.js';
import { createRunner } from '../../src/exec/runner.js';
import { ErrorCode } from '../../src/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { rejectsWith } from '../harness/assert.js';
import { kernelDeviceSize, MiB, pattern, readAt, writeAt } from '../harness/blockdev.js';
import { run } from '../harness/exec.js';
import { listLoops } from '../harness/loops.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

describe('local connector: a block device is handed out as itself', () => {
  const connector = createLocalConnector(createRunner({ logger: silentLogger }));
  let dir: TempDir;
  let volume: string; // the "LV": a loop device over a file
  let info: ConnectionInfo;

  before(async () => {
    dir = await tempDir('cairn-local-block-');
    const file = join(dir.path, 'lv.img');
    await writeFile(file, '');
    await truncate(file, 16 * MiB);
    volume = (await run(['losetup', '--find', '--show', file])).trim();
    info = { protocol: 'local', data: { path: volume, host: 'h', readOnly: false } };
  });

  after(async () => {
    await run(['umount', join(dir.path, 'mnt')]).catch(() => {});
    for (const l of await listLoops()) if (l.backFile === volume) await run(['losetup', '--detach', l.name]);
    await run(['losetup', '--detach', volume]).catch(() => {});
    await dir.cleanup();
  });

  it('attaches read-write as the device itself, and detaching leaves it in place', async () => {
    const device = await connector.attach(info, { readOnly: false });
    assert.deepEqual(device, { path: volume, type: 'block' });
    assert.equal(await connector.deviceSize(device), 16 * MiB);
    assert.deepEqual(await connector.findDevices(info), [device]);
    await connector.detach(info, device, { force: false });
    assert.equal(await kernelDeviceSize(volume), 16 * MiB, 'the volume’s device is still there');
  });

  it('attaches read-only as a read-only loop device over it', async () => {
    const data = pattern('block-ro');
    await writeAt(volume, [0], data);
    const device = await connector.attach(info, { readOnly: true });
    assert.notEqual(device.path, volume);
    const loop = (await listLoops()).find((l) => l.name === device.path);
    assert.deepEqual(loop && { back: loop.backFile, ro: loop.readOnly }, { back: volume, ro: true });
    assert.ok((await readAt(device.path, 0, MiB)).equals(data));
    await assert.rejects(writeAt(device.path, [0], data));
    const roInfo = { ...info, data: { ...info.data, readOnly: true } };
    assert.deepEqual(await connector.findDevices(roInfo), [device], 'the loop device, not the volume');
    await connector.detach(info, device, { force: false });
    assert.equal(
      (await listLoops()).find((l) => l.name === device.path && l.backFile === volume),
      undefined,
    );
  });

  it('refuses to detach the device while it is mounted, and says where', async () => {
    const device = await connector.attach(info, { readOnly: false });
    const mnt = join(dir.path, 'mnt');
    await mkdir(mnt, { recursive: true });
    await run(['mkfs.ext4', '-q', '-F', volume]);
    await run(['mount', volume, mnt]);
    try {
      await rejectsWith(connector.detach(info, device, { force: false }), ErrorCode.InvalidState, mnt);
      await connector.detach(info, device, { force: true }); // forced: nothing to undo, nothing undone
    } finally {
      await run(['umount', mnt]);
    }
    await connector.detach(info, device, { force: false });
  });

  it('leaves a device alone that is no longer the volume’s, and refuses to extend it', async () => {
    const gone: ConnectionInfo = { ...info, data: { ...info.data, path: join(dir.path, 'no-such-device') } };
    await connector.detach(gone, { path: volume, type: 'block' }, { force: false });
    assert.equal(await kernelDeviceSize(volume), 16 * MiB);
    await rejectsWith(connector.extend(gone, { path: volume, type: 'block' }), ErrorCode.InvalidState);
  });
});
