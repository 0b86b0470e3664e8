import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ErrorCode, type Volume } from '../../src/index.js';
import { rejectsWith } from '../harness/assert.js';
import { pattern, readAt, writeAt } from '../harness/blockdev.js';
import { type DriverSuite, failsWithoutChange, MiB, volume } from './driver-helpers.js';

/** Reads `length` bytes at `offset` through a fresh attach. */
async function readThrough(vol: Volume, offset: number, length: number): Promise<Buffer> {
  const conn = await vol.attach();
  try {
    return await readAt(conn.path!, offset, length);
  } finally {
    await vol.detach();
  }
}

async function writeThrough(vol: Volume, offsets: number[], data: Buffer): Promise<void> {
  const conn = await vol.attach();
  try {
    await writeAt(conn.path!, offsets, data);
  } finally {
    await vol.detach();
  }
}

const refused = (s: DriverSuite, action: () => Promise<unknown>, code: ErrorCode, ...mentions: string[]) =>
  failsWithoutChange(s, action, (act) => rejectsWith(act, code, ...mentions));

/** A backend without revert says so (UNSUPPORTED) and changes nothing. */
async function revertRefused(s: DriverSuite): Promise<void> {
  const vol = await volume(s, 8 * MiB);
  const snap = await vol.createSnapshot();
  await refused(s, () => vol.revertToSnapshot(snap), ErrorCode.Unsupported, 'revert');
}

/** A backend without manage says so (UNSUPPORTED) and changes nothing. */
async function manageRefused(s: DriverSuite): Promise<void> {
  await refused(s, () => s.backend.manageVolume({ reference: 'anything' }), ErrorCode.Unsupported, 'manage');
  const vol = await volume(s, 8 * MiB);
  await refused(s, () => vol.unmanage(), ErrorCode.Unsupported, 'unmanage');
}

/** Revert to a snapshot, and adopting (manage) and releasing (unmanage) backend objects. */
export function manageCases(get: () => DriverSuite): void {
  it('reverts a volume to a snapshot in place, keeping its size and the snapshot', async () => {
    const s = get();
    if (!s.backend.capabilities.revertToSnapshot) return revertRefused(s);
    const vol = await volume(s, 16 * MiB);
    const before = pattern(`before-${vol.id}`);
    const after = pattern(`after-${vol.id}`);
    await writeThrough(vol, [0, 15 * MiB], before);
    const snap = await vol.createSnapshot();
    await writeThrough(vol, [0, 15 * MiB], after);
    await vol.extend(32 * MiB);
    await writeThrough(vol, [31 * MiB], after);
    await vol.revertToSnapshot(snap);
    assert.equal(vol.status, 'available');
    assert.equal(vol.size, 32 * MiB, 'the volume keeps its size');
    assert.ok((await readThrough(vol, 0, MiB)).equals(before));
    assert.ok((await readThrough(vol, 15 * MiB, MiB)).equals(before));
    assert.ok(!(await readThrough(vol, 31 * MiB, MiB)).equals(after), 'data beyond the snapshot is gone');
    assert.equal((await vol.snapshots()).length, 1, 'the snapshot stays');
    const stats = await s.backend.stats();
    assert.equal(stats.volumeCount, 1);
    assert.equal(stats.snapshotCount, 1);
  });

  it('refuses to revert an attached volume or to another volume’s snapshot, changing nothing', async () => {
    const s = get();
    if (!s.backend.capabilities.revertToSnapshot) return revertRefused(s);
    const a = await volume(s, 8 * MiB);
    const b = await volume(s, 8 * MiB);
    const snapA = await a.createSnapshot();
    const snapB = await b.createSnapshot();
    await refused(s, () => a.revertToSnapshot(snapB), ErrorCode.InvalidArgument, snapB.id, b.id);
    await refused(s, () => a.revertToSnapshot('no-such-snapshot'), ErrorCode.NotFound);
    await a.attach();
    try {
      await refused(s, () => a.revertToSnapshot(snapA), ErrorCode.InvalidState, 'in-use');
    } finally {
      await a.detach();
    }
  });

  it('manages an existing object: size rounded up, data kept, the reference renamed', async () => {
    const s = get();
    if (!s.backend.capabilities.manageExisting) return manageRefused(s);
    const foreign = s.ctx.foreign;
    assert.ok(foreign, 'a driver with manageExisting gives the suite a way to make foreign objects');
    const reference = `legacy-${Date.now()}`;
    const data = pattern(reference);
    await foreign.make(reference, data, 10 * MiB + 4096);
    let vol: Volume | undefined;
    try {
      vol = await s.backend.manageVolume({ reference, name: 'adopted', metadata: { from: reference } });
      assert.equal(vol.status, 'available');
      assert.equal(vol.size, 11 * MiB, 'rounded up to the alignment');
      assert.equal(vol.name, 'adopted');
      assert.equal(await foreign.exists(reference), false, 'the reference is renamed');
      assert.ok((await readThrough(vol, 0, MiB)).equals(data), 'the data is the object’s');
      const stats = await s.backend.stats();
      assert.equal(stats.volumeCount, 1);

      // Adopted twice, or a tracked volume's own object: refused.
      await refused(s, () => s.backend.manageVolume({ reference }), ErrorCode.NotFound, reference);
      await refused(
        s,
        () => s.backend.manageVolume({ reference: `volume-${vol!.id}` }),
        ErrorCode.InvalidArgument,
        vol.id,
      );

      // Unmanage keeps the object; managing it again gives the same data.
      const kept = await vol.unmanage();
      assert.deepEqual(await s.cairn.volumes(), []);
      assert.equal(await foreign.exists(kept), true, `unmanage keeps ${kept}`);
      vol = await s.backend.manageVolume({ reference: kept });
      assert.ok((await readThrough(vol, 0, MiB)).equals(data));
    } finally {
      await vol?.delete();
      await foreign.remove(reference).catch(() => {});
    }
    assert.equal((await s.backend.stats()).volumeCount, 0);
  });

  it('refuses bad or missing references and taken names, changing nothing', async () => {
    const s = get();
    if (!s.backend.capabilities.manageExisting) return manageRefused(s);
    const foreign = s.ctx.foreign!;
    const reference = `taken-${Date.now()}`;
    await foreign.make(reference, pattern(reference), 4 * MiB);
    try {
      await volume(s, 4 * MiB, 'taken');
      for (const bad of ['../etc/passwd', 'a/b', '', 'x y', '$(reboot)', '-rf', `snapshot-${reference}`]) {
        await refused(
          s,
          () => s.backend.manageVolume({ reference: bad }),
          ErrorCode.InvalidArgument,
          'reference',
        );
      }
      await refused(s, () => s.backend.manageVolume({ reference: 'no-such-object' }), ErrorCode.NotFound);
      await refused(
        s,
        () => s.backend.manageVolume({ reference, name: 'taken' }),
        ErrorCode.AlreadyExists,
        'taken',
      );
      assert.equal(await foreign.exists(reference), true, 'a refused manage leaves the object alone');
      const vol = (await s.backend.volumes({ name: 'taken' }))[0]!;
      await vol.createSnapshot();
      await refused(s, () => vol.unmanage(), ErrorCode.InvalidState, 'snapshot');
    } finally {
      await foreign.remove(reference);
    }
  });
}
