import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ErrorCode, isCairnError } from '../../src/index.js';
import { rejectsWith } from '../harness/assert.js';
import { kernelDeviceSize } from '../harness/blockdev.js';
import { type DriverSuite, localDevices, MiB, observe, volume } from './driver-helpers.js';

/** Splits settled results into values and CairnError codes. */
function outcomes<T>(results: PromiseSettledResult<T>[]): { ok: T[]; codes: string[] } {
  const ok: T[] = [];
  const codes: string[] = [];
  for (const r of results) {
    if (r.status === 'fulfilled') ok.push(r.value);
    else codes.push(isCairnError(r.reason) ? r.reason.code : `not a CairnError: ${String(r.reason)}`);
  }
  return { ok, codes };
}

/** Many operations on one backend at once. */
export function concurrencyCases(get: () => DriverSuite): void {
  it('creates 8 volumes and snapshots them, all at once', async () => {
    const s = get();
    const names = Array.from({ length: 8 }, (_, i) => `par-${i}`);
    const vols = await Promise.all(names.map((name) => volume(s, 16 * MiB, name)));
    assert.deepEqual(vols.map((v) => v.name).sort(), names);
    assert.equal(new Set(vols.map((v) => v.id)).size, 8);
    const snaps = await Promise.all(vols.map((v, i) => v.createSnapshot({ name: `par-snap-${i}` })));
    assert.equal(new Set(snaps.map((x) => x.id)).size, 8);
    // and several snapshots of one volume at once
    const more = await Promise.all([1, 2, 3, 4].map(() => vols[0]!.createSnapshot()));
    assert.equal(new Set(more.map((x) => x.id)).size, 4);
    const stats = await s.backend.stats();
    assert.equal(stats.volumeCount, 8);
    assert.equal(stats.snapshotCount, 12);
    assert.equal((await s.cairn.snapshots({ volumeId: vols[0]!.id })).length, 5);
    assert.ok(
      (await s.backend.volumes()).every((v) => v.status === 'available'),
      'every volume ended available',
    );
  });

  it('lets exactly one of several creates of the same name win', async () => {
    const s = get();
    const before = await observe(s);
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map(() => volume(s, 8 * MiB, 'same-name')));
    const { ok, codes } = outcomes(results);
    assert.equal(ok.length, 1, `one create succeeds; the others failed with ${codes}`);
    assert.deepEqual(codes, Array(4).fill(ErrorCode.AlreadyExists));
    assert.deepEqual(
      (await s.backend.volumes()).map((v) => v.id),
      [ok[0]!.id],
    );
    const stats = await s.backend.stats();
    assert.equal(stats.volumeCount, before.stats.volumeCount + 1, 'only one volume was made on the backend');
  });

  it('serializes concurrent extends of one attached volume', async () => {
    const s = get();
    const vol = await volume(s, 16 * MiB);
    if (!s.backend.capabilities.onlineExtend) {
      await vol.attach();
      await rejectsWith(vol.extend(32 * MiB), ErrorCode.Unsupported, 'connected');
      await vol.detach();
      return;
    }
    const conn = await vol.attach();
    // Separate views of the same volume, as separate callers would hold.
    const views = await Promise.all([1, 2, 3, 4, 5, 6].map(() => s.cairn.volume(vol.id)));
    const sizes = views.map((_, i) => (32 + 16 * i) * MiB);
    const { ok, codes } = outcomes(await Promise.allSettled(views.map((v, i) => v.extend(sizes[i]!))));
    assert.deepEqual(codes, [], 'no extend conflicts with another');
    assert.equal(ok.length, 6);
    await vol.refresh();
    assert.equal(vol.size, Math.max(...sizes));
    assert.equal(vol.status, 'in-use');
    assert.equal(await kernelDeviceSize(conn.path!), Math.max(...sizes));
    await vol.detach();
  });

  it('lets exactly one of two concurrent attaches of a volume win', async () => {
    const s = get();
    const vol = await volume(s, 16 * MiB);
    const views = await Promise.all([1, 2].map(() => s.cairn.volume(vol.id)));
    const { ok, codes } = outcomes(await Promise.allSettled(views.map((v) => v.attach())));
    assert.equal(ok.length, 1);
    assert.deepEqual(codes, [ErrorCode.InvalidState]);
    const devices = localDevices(s.ctx);
    assert.equal((await devices.held()).length, devices.perAttach, 'one device (a loop device, or none)');
    assert.equal((await vol.connections()).length, 1);
    await vol.detach();
    assert.deepEqual(await devices.held(), []);
  });
}
