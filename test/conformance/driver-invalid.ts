import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { it } from 'node:test';
import { type Backend, ErrorCode } from '../../src/index.js';
import { rejectsWith } from '../harness/assert.js';
import { type DriverSuite, failsWithoutChange, MiB, volume } from './driver-helpers.js';

const BAD_SIZES: unknown[] = [0, -1, -4096, 'abc', '1x', 1.5, '1.5', '', '-1GiB', Number.NaN, null, 2 ** 53];
const BAD_NAMES = [
  'a/b',
  '/abs',
  '..',
  '../up',
  'a..b',
  'a\0b',
  'a;b',
  '$(x)',
  '`x`',
  'a|b',
  'a b',
  'x&&y',
  'a>b',
];

/** Asserts `action` is refused with `code` (message naming each of `mentions`) and changes nothing. */
function refused(s: DriverSuite, action: () => Promise<unknown>, code: ErrorCode, ...mentions: string[]) {
  return failsWithoutChange(s, action, (act) => rejectsWith(act, code, ...mentions));
}

/** Same, observing another backend of the suite. */
function refusedOn(b: Backend, s: DriverSuite, action: () => Promise<unknown>, code: ErrorCode) {
  return failsWithoutChange(s, action, (act) => rejectsWith(act, code), b);
}

/** Bad sizes, names, ids, states and capacity: refused with a stable code, nothing changed. */
export function invalidInputCases(get: () => DriverSuite): void {
  it('refuses bad sizes everywhere a size is taken', async () => {
    const s = get();
    const vol = await volume(s, 16 * MiB);
    const snap = await vol.createSnapshot();
    for (const size of BAD_SIZES) {
      const what = `size ${String(size)}`;
      const anySize = size as number;
      await refused(s, () => s.backend.createVolume({ size: anySize }), ErrorCode.InvalidArgument, 'size');
      await refused(s, () => vol.extend(anySize), ErrorCode.InvalidArgument, 'newSize');
      await refused(s, () => vol.clone({ size: anySize }), ErrorCode.InvalidArgument, 'size');
      await refused(s, () => snap.createVolume({ size: anySize }), ErrorCode.InvalidArgument, 'size');
      assert.equal((await s.cairn.volume(vol.id)).size, 16 * MiB, what);
    }
  });

  it('refuses sizes smaller than the source or the volume', async () => {
    const s = get();
    const vol = await volume(s, 32 * MiB);
    const snap = await vol.createSnapshot();
    await refused(s, () => vol.extend('16MiB'), ErrorCode.InvalidArgument, 'newSize');
    await refused(s, () => vol.clone({ size: '16MiB' }), ErrorCode.InvalidArgument, 'size');
    await refused(s, () => snap.createVolume({ size: '16MiB' }), ErrorCode.InvalidArgument, 'size');
  });

  it('refuses a thick volume larger than the free space', async () => {
    const s = get();
    const thick = await s.cairn.addBackend('thick', s.ctx.thickConfig);
    const { freeBytes } = await thick.stats();
    const tooBig = Math.ceil((freeBytes + 1024 * MiB) / MiB) * MiB;
    await refusedOn(thick, s, () => thick.createVolume({ size: tooBig }), ErrorCode.InsufficientCapacity);
    const vol = await thick.createVolume({ size: 8 * MiB });
    await refusedOn(thick, s, () => vol.clone({ size: tooBig }), ErrorCode.InsufficientCapacity);
    const before = await thick.stats();
    await rejectsWith(vol.extend(tooBig), ErrorCode.InsufficientCapacity);
    await vol.refresh();
    assert.equal(vol.size, 8 * MiB);
    assert.equal(vol.status, 'available');
    assert.equal(vol.lastError?.operation, 'extend');
    assert.equal((await thick.stats()).provisionedBytes, before.provisionedBytes);
  });

  it('refuses names with path separators, "..", NUL or shell metacharacters', async () => {
    const s = get();
    const vol = await volume(s, 8 * MiB);
    const snap = await vol.createSnapshot();
    for (const name of BAD_NAMES) {
      await refused(s, () => s.backend.createVolume({ size: MiB, name }), ErrorCode.InvalidArgument, 'name');
      await refused(s, () => vol.createSnapshot({ name }), ErrorCode.InvalidArgument, 'name');
      await refused(s, () => vol.clone({ name }), ErrorCode.InvalidArgument, 'name');
      await refused(s, () => snap.createVolume({ name }), ErrorCode.InvalidArgument, 'name');
      await refused(
        s,
        () => s.cairn.addBackend(name, s.ctx.freshConfig()),
        ErrorCode.InvalidArgument,
        'name',
      );
      await refused(
        s,
        () => s.backend.createVolume({ size: MiB, id: name }),
        ErrorCode.InvalidArgument,
        'id',
      );
      await refused(s, () => vol.createSnapshot({ id: name }), ErrorCode.InvalidArgument, 'id');
    }
  });

  it('refuses unknown option fields, naming them', async () => {
    const s = get();
    const vol = await volume(s, 8 * MiB);
    const sneaky = { size: MiB, sise: 2 } as unknown as { size: number };
    await refused(s, () => s.backend.createVolume(sneaky), ErrorCode.InvalidArgument, 'sise');
    await refused(s, () => vol.createSnapshot({ nmae: 'x' } as never), ErrorCode.InvalidArgument, 'nmae');
    await refused(s, () => vol.attach({ mode: 'rwx' } as never), ErrorCode.InvalidArgument, 'mode');
  });

  it('refuses ids and names that are taken', async () => {
    const s = get();
    const vol = await volume(s, 8 * MiB, 'taken');
    const snap = await vol.createSnapshot({ name: 'taken-snap' });
    await refused(s, () => s.backend.createVolume({ size: MiB, id: vol.id }), ErrorCode.AlreadyExists);
    await refused(s, () => s.backend.createVolume({ size: MiB, name: 'taken' }), ErrorCode.AlreadyExists);
    await refused(s, () => vol.clone({ name: 'taken' }), ErrorCode.AlreadyExists);
    await refused(s, () => snap.createVolume({ id: vol.id }), ErrorCode.AlreadyExists);
    await refused(s, () => vol.createSnapshot({ id: snap.id }), ErrorCode.AlreadyExists);
    await refused(s, () => vol.createSnapshot({ name: 'taken-snap' }), ErrorCode.AlreadyExists);
  });

  it('answers NOT_FOUND for unknown ids and deleted objects', async () => {
    const s = get();
    await refused(s, () => s.cairn.volume(randomUUID()), ErrorCode.NotFound);
    await refused(s, () => s.cairn.volume('no-such-volume'), ErrorCode.NotFound);
    await refused(s, () => s.cairn.snapshot(randomUUID()), ErrorCode.NotFound);
    await refused(s, () => s.cairn.connection(randomUUID()), ErrorCode.NotFound);
    assert.throws(() => s.cairn.backend('no-such-backend'), { code: ErrorCode.NotFound });
    assert.deepEqual(await s.backend.volumes({ id: randomUUID() }), []);

    const gone = await volume(s, 8 * MiB);
    const goneSnap = await gone.createSnapshot();
    await goneSnap.delete();
    await gone.delete();
    await refused(s, () => gone.extend('16MiB'), ErrorCode.NotFound);
    await refused(s, () => gone.clone(), ErrorCode.NotFound);
    await refused(s, () => gone.createSnapshot(), ErrorCode.NotFound);
    await refused(s, () => gone.attach(), ErrorCode.NotFound);
    await refused(s, () => goneSnap.createVolume(), ErrorCode.NotFound);
  });

  it('refuses operations in the wrong state', async () => {
    const s = get();
    const vol = await volume(s, 8 * MiB);
    const snap = await vol.createSnapshot();
    await refused(s, () => vol.delete(), ErrorCode.InvalidState, snap.id);
    await refused(s, () => vol.delete({ force: true }), ErrorCode.InvalidState);
    await refused(s, () => vol.detach(), ErrorCode.InvalidState);
    await snap.delete();
    await vol.delete();
  });
}

/** Bad backend configurations: refused naming the field, no backend added, nothing created. */
export function invalidConfigCases(get: () => DriverSuite): void {
  const addFails = (s: DriverSuite, config: Record<string, unknown>, ...mentions: string[]) =>
    refused(s, () => s.cairn.addBackend('bad-config', config), ErrorCode.InvalidArgument, ...mentions);

  it('refuses an unknown or missing driver', async () => {
    const s = get();
    const { driver: _, ...rest } = s.ctx.freshConfig();
    await addFails(s, { ...rest, driver: 'no-such-driver' }, 'driver', 'no-such-driver');
    await addFails(s, { ...rest, driver: 'cairn-driver-no-such-package' }, 'cairn-driver-no-such-package');
    await addFails(s, { ...rest, driver: '' }, 'driver');
    await addFails(s, { ...rest, driver: 42 }, 'driver');
    await addFails(s, rest, 'driver');
  });

  it('refuses missing, mistyped, unknown and invalid fields, naming them', async () => {
    const s = get();
    for (const field of s.ctx.requiredFields) {
      const { [field]: _, ...rest } = s.ctx.freshConfig();
      await addFails(s, rest, field);
    }
    for (const [field, value] of Object.entries(s.ctx.freshConfig())) {
      if (field === 'driver') continue;
      await addFails(s, { ...s.ctx.freshConfig(), [field]: typeof value === 'string' ? 12345 : 'x' }, field);
    }
    await addFails(s, { ...s.ctx.freshConfig(), noSuchField: 1 }, 'noSuchField');
    for (const [field, value] of s.ctx.invalidFields) {
      await addFails(s, { ...s.ctx.freshConfig(), [field]: value }, field);
    }
    await refused(s, () => s.cairn.addBackend('under-test', s.ctx.freshConfig()), ErrorCode.AlreadyExists);
  });
}
