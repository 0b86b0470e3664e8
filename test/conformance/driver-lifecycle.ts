import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ErrorCode } from '../../src/index.js';
import { rejectsWith } from '../harness/assert.js';
import { type DriverSuite, MiB, observe, volume } from './driver-helpers.js';

/** Create, snapshot, clone, extend, delete and stats, checked through the API. */
export function lifecycleCases(get: () => DriverSuite): void {
  it('reports its capabilities as data', () => {
    const { backend, ctx } = get();
    const caps = backend.capabilities;
    if (ctx.expectedCloneSpeed) assert.equal(caps.cloneSpeed, ctx.expectedCloneSpeed);
    assert.ok(['instant', 'copy'].includes(caps.cloneSpeed));
    assert.equal(typeof caps.thin, 'boolean');
    assert.ok(caps.protocols.length > 0);
    assert.ok(Number.isInteger(caps.sizeAlignment) && caps.sizeAlignment > 0);
  });

  it('creates a volume, finds it, and deletes it', async () => {
    const s = get();
    const before = await observe(s);
    const align = s.backend.capabilities.sizeAlignment;
    const vol = await s.backend.createVolume({
      size: 10 * MiB + 1,
      name: 'life-1',
      description: 'd',
      metadata: { app: 'pg' },
    });
    assert.equal(vol.size, Math.ceil((10 * MiB + 1) / align) * align, 'size is rounded up to the alignment');
    assert.equal(vol.status, 'available');
    assert.equal(vol.attachStatus, 'detached');
    assert.equal(vol.backendName, 'under-test');
    assert.deepEqual(vol.metadata, { app: 'pg' });
    assert.deepEqual(
      (await s.backend.volumes()).map((v) => v.id),
      [vol.id],
    );
    assert.equal((await s.cairn.volume(vol.id)).name, 'life-1');
    assert.equal((await s.cairn.volume('life-1')).id, vol.id);
    assert.deepEqual(
      (await s.backend.volumes({ name: 'life-1' })).map((v) => v.id),
      [vol.id],
    );
    assert.equal((await s.backend.stats()).volumeCount, before.stats.volumeCount + 1);

    await vol.delete();
    assert.deepEqual(await s.backend.volumes(), []);
    await rejectsWith(s.cairn.volume(vol.id), ErrorCode.NotFound);
    await rejectsWith(vol.refresh(), ErrorCode.NotFound);
    assert.deepEqual(await observe(s), before, 'deleting leaves the backend as it was');
  });

  it('counts provisioned space and tells thin from thick', async () => {
    const s = get();
    const thin = await s.backend.stats();
    assert.equal(thin.thin, s.backend.capabilities.thin);
    assert.ok(thin.totalBytes >= thin.freeBytes && thin.freeBytes >= 0);
    const vol = await volume(s, 48 * MiB);
    const after = await s.backend.stats();
    assert.equal(after.provisionedBytes, thin.provisionedBytes + 48 * MiB);
    assert.equal(after.volumeCount, thin.volumeCount + 1);
    if (after.thin && after.allocatedBytes !== null && thin.allocatedBytes !== null) {
      assert.ok(
        after.allocatedBytes - thin.allocatedBytes < 48 * MiB,
        'a thin volume is not allocated up front',
      );
    }
    await vol.delete();

    const thick = await s.cairn.addBackend('thick', s.ctx.thickConfig);
    const t0 = await thick.stats();
    assert.equal(t0.thin, false);
    assert.equal(thick.capabilities.thin, false);
    await thick.createVolume({ size: 16 * MiB });
    const t1 = await thick.stats();
    assert.equal(t1.provisionedBytes, t0.provisionedBytes + 16 * MiB);
    if (t1.allocatedBytes !== null && t0.allocatedBytes !== null) {
      assert.ok(t1.allocatedBytes - t0.allocatedBytes >= 16 * MiB, 'a thick volume is allocated at once');
    }
  });

  it('takes and deletes snapshots', async () => {
    const s = get();
    const vol = await volume(s, 32 * MiB);
    const before = await s.backend.stats();
    const snap = await vol.createSnapshot({ name: 'snap-1', metadata: { why: 'test' } });
    assert.equal(snap.status, 'available');
    assert.equal(snap.volumeId, vol.id);
    assert.equal(snap.size, vol.size);
    assert.deepEqual(
      (await vol.snapshots()).map((x) => x.id),
      [snap.id],
    );
    assert.equal((await s.cairn.snapshot('snap-1')).id, snap.id);
    assert.equal((await s.backend.stats()).snapshotCount, before.snapshotCount + 1);
    await snap.delete();
    assert.deepEqual(await vol.snapshots(), []);
    await rejectsWith(s.cairn.snapshot(snap.id), ErrorCode.NotFound);
    assert.equal((await s.backend.stats()).snapshotCount, before.snapshotCount);
  });

  it('clones a volume and makes volumes from snapshots', async () => {
    const s = get();
    const vol = await volume(s, 32 * MiB);
    const clone = await vol.clone({ name: 'clone-1' });
    assert.equal(clone.size, vol.size);
    assert.equal(clone.sourceVolumeId, vol.id);
    assert.equal(clone.status, 'available');
    const snap = await vol.createSnapshot();
    const restored = await snap.createVolume();
    assert.equal(restored.size, snap.size);
    assert.equal(restored.sourceSnapshotId, snap.id);
    const bigger = await snap.createVolume({ size: 96 * MiB });
    assert.equal(bigger.size, 96 * MiB);
    const biggerClone = await vol.clone({ size: '64MiB' });
    assert.equal(biggerClone.size, 64 * MiB);
    assert.equal((await s.backend.stats()).volumeCount, 5);
    assert.equal((await s.backend.volumes()).length, 5);
  });

  it('extends a volume; the same size is a no-op', async () => {
    const s = get();
    const vol = await volume(s, 32 * MiB);
    const before = await s.backend.stats();
    await vol.extend('64MiB');
    assert.equal(vol.size, 64 * MiB);
    assert.equal(vol.status, 'available');
    assert.equal((await s.cairn.volume(vol.id)).size, 64 * MiB);
    assert.equal((await s.backend.stats()).provisionedBytes, before.provisionedBytes + 32 * MiB);
    const version = vol.record.version;
    await vol.extend(64 * MiB);
    assert.equal((await s.cairn.volume(vol.id)).record.version, version);
  });

  it('deletes idempotently: twice, through stale views, and snapshots too', async () => {
    const s = get();
    const before = await observe(s);
    const vol = await volume(s);
    const snap = await vol.createSnapshot();
    const staleSnap = await s.cairn.snapshot(snap.id);
    await snap.delete();
    await snap.delete();
    await staleSnap.delete();
    const staleVol = await s.cairn.volume(vol.id);
    await vol.delete();
    await vol.delete();
    await staleVol.delete();
    assert.deepEqual(await observe(s), before);
  });
}
