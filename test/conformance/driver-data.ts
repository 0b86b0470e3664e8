import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { it } from 'node:test';
import { type Connection, ErrorCode, isCairnError, type Volume } from '../../src/index.js';
import { rejectsWith } from '../harness/assert.js';
import { kernelDeviceSize, pattern, readAt, writeAt } from '../harness/blockdev.js';
import { type DriverSuite, failsWithoutChange, localDevices, MiB, volume } from './driver-helpers.js';

/** Offsets written in a 64 MiB volume: the start, an unaligned middle, the last MiB. */
const OFFSETS = [0, 17 * MiB + 4096, 63 * MiB];

async function attached(vol: Volume, mode: 'rw' | 'ro' = 'rw'): Promise<string> {
  const conn = await vol.attach({ mode });
  assert.equal(conn.status, 'attached');
  assert.ok(conn.path && /^\/dev\//.test(conn.path), `attach returns a device: ${conn.path}`);
  return conn.path;
}

async function assertData(device: string, data: Buffer, offsets = OFFSETS): Promise<void> {
  for (const offset of offsets) {
    assert.ok((await readAt(device, offset, data.length)).equals(data), `data at ${offset} on ${device}`);
  }
}

/** Writes `data` through an attach and detaches. */
async function fill(vol: Volume, data: Buffer, offsets = OFFSETS): Promise<void> {
  await writeAt(await attached(vol), offsets, data);
  await vol.detach();
}

/** Asserts the volume holds `data` at `offsets` (read through a fresh attach). */
async function holds(vol: Volume, data: Buffer, offsets = OFFSETS): Promise<void> {
  await assertData(await attached(vol), data, offsets);
  await vol.detach();
}

/** Attach, block-level I/O, snapshot and clone isolation. */
export function dataCases(get: () => DriverSuite): void {
  it('attaches, keeps written data across detach and re-attach, and detaches cleanly', async () => {
    const s = get();
    const vol = await volume(s);
    const device = await attached(vol);
    assert.equal(vol.status, 'in-use');
    assert.equal(vol.attachStatus, 'attached');
    assert.equal(await kernelDeviceSize(device), 64 * MiB);
    const devices = localDevices(s.ctx);
    assert.equal((await devices.held()).length, devices.perAttach, 'the device is backed by the backend');
    assert.ok(await devices.backing(device), 'the device shows the volume');
    const data = pattern(`io-${vol.id}`);
    await writeAt(device, OFFSETS, data);
    await vol.detach();
    assert.equal(vol.status, 'available');
    assert.equal(vol.attachStatus, 'detached');
    assert.deepEqual(await vol.connections(), []);
    assert.deepEqual(await devices.held(), []);
    await holds(vol, data);
  });

  it('extends an attached volume and the device grows', async () => {
    const s = get();
    const vol = await volume(s);
    const device = await attached(vol);
    const data = pattern('extend-online');
    await writeAt(device, [0], data);
    if (!s.backend.capabilities.onlineExtend) {
      // Refused before anything changes; offline it grows.
      await failsWithoutChange(
        s,
        () => vol.extend('96MiB'),
        (act) => rejectsWith(act, ErrorCode.Unsupported, 'connected'),
      );
      await vol.detach();
      await vol.extend('96MiB');
      await holds(vol, data, [0]);
      return;
    }
    await vol.extend('96MiB');
    assert.equal(vol.size, 96 * MiB);
    assert.equal(vol.status, 'in-use');
    assert.equal(await kernelDeviceSize(device), 96 * MiB, '/sys/class/block/*/size follows the volume');
    await assertData(device, data, [0]);
    const tail = pattern('extend-tail');
    await writeAt(device, [95 * MiB], tail);
    await vol.detach();
    await holds(vol, tail, [95 * MiB]);
  });

  it('keeps a snapshot apart from later writes', async () => {
    const s = get();
    const vol = await volume(s);
    const a = pattern('snap-a');
    const b = pattern('snap-b');
    const device = await attached(vol);
    await writeAt(device, OFFSETS, a);
    const snap = await vol.createSnapshot(); // taken while attached (in use)
    await writeAt(device, OFFSETS, b);
    await vol.detach();
    const restored = await snap.createVolume();
    await holds(restored, a);
    await holds(vol, b);
    await fill(restored, pattern('snap-c'));
    await holds(await snap.createVolume(), a); // writes to a restored volume don't reach the snapshot
  });

  it('keeps a clone and its source apart', async () => {
    const s = get();
    const src = await volume(s);
    const a = pattern('clone-a');
    await fill(src, a);
    const clone = await src.clone();
    await holds(clone, a);
    const b = pattern('clone-b');
    await fill(clone, b);
    await holds(src, a);
    const c = pattern('clone-c');
    await fill(src, c);
    await holds(clone, b);
  });

  it('makes a larger volume from a snapshot: data kept, the rest reads as zeros', async () => {
    const s = get();
    const vol = await volume(s);
    const a = pattern('grow-a');
    await fill(vol, a);
    const snap = await vol.createSnapshot();
    const big = await snap.createVolume({ size: 128 * MiB });
    assert.equal(big.size, 128 * MiB);
    const device = await attached(big);
    assert.equal(await kernelDeviceSize(device), 128 * MiB);
    await assertData(device, a);
    assert.ok((await readAt(device, 100 * MiB)).equals(Buffer.alloc(MiB)), 'the new space is zeros');
    await big.detach();
  });

  it('refuses writes through a read-only attach', async () => {
    const s = get();
    const vol = await volume(s);
    const a = pattern('ro-a');
    await fill(vol, a);
    const attaching = vol.attach({ mode: 'ro' });
    const refusal = await attaching.then(
      () => undefined,
      (err: unknown) => err,
    );
    if (isCairnError(refusal, ErrorCode.Unsupported)) {
      // A protocol without read-only exports (NVMe-oF on Linux 6.1) must say so and leave nothing.
      assert.match(refusal.message, /read-only/);
      assert.deepEqual(await vol.connections(), []);
      assert.deepEqual(await localDevices(s.ctx).held(), []);
      assert.equal((await vol.refresh()).status, 'available');
      return;
    }
    const conn = await attaching;
    assert.equal(conn.mode, 'ro');
    const device = conn.path!;
    const ro = await readFile(`/sys/class/block/${basename(device)}/ro`, 'utf8');
    assert.equal(ro.trim(), '1', 'the kernel has the device read-only');
    await assert.rejects(writeAt(device, [0], pattern('ro-b')), (err: NodeJS.ErrnoException) => {
      assert.ok(['EPERM', 'EROFS', 'EACCES'].includes(err.code ?? ''), `write failed with ${err.code}`);
      return true;
    });
    await assertData(device, a);
    await vol.detach();
    await holds(vol, a);
  });

  it('refuses a second attach and leaves the first one alone', async () => {
    const s = get();
    const vol = await volume(s);
    const a = pattern('twice');
    const device = await attached(vol);
    await writeAt(device, [0], a);
    const backing = (device: string) => localDevices(s.ctx).backing(device);
    const file = await backing(device);
    const again = await s.cairn.volume(vol.id);
    await failsWithoutChange(
      s,
      () => again.attach(),
      (act) => rejectsWith(act, ErrorCode.InvalidState),
    );
    await failsWithoutChange(
      s,
      () => vol.attach({ mode: 'ro' }),
      (act) => rejectsWith(act, ErrorCode.InvalidState),
    );
    const [conn] = (await vol.connections()) as [Connection];
    await failsWithoutChange(
      s,
      () => conn.attach(),
      (act) => rejectsWith(act, ErrorCode.InvalidState),
    );
    assert.equal(await backing(device), file, 'the first device still points at the volume');
    await assertData(device, a, [0]);
    await vol.detach();
  });

  it('refuses to delete an attached volume', async () => {
    const s = get();
    const vol = await volume(s);
    const device = await attached(vol);
    await failsWithoutChange(
      s,
      () => vol.delete(),
      (act) => rejectsWith(act, ErrorCode.InvalidState),
    );
    await failsWithoutChange(
      s,
      () => vol.delete({ force: true }),
      (act) => rejectsWith(act, ErrorCode.InvalidState),
    );
    assert.ok(await localDevices(s.ctx).backing(device));
    await vol.detach();
    await vol.delete();
    assert.deepEqual(await s.backend.volumes(), []);
  });
}
