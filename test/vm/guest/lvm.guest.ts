// The lvm driver's own cases, against real LVM in the test VM (see test/vm/lvm.test.ts): thin
// snapshot independence, thick COW snapshot sizing, a missing VG or pool, no space, a name that
// is taken, revert keeping the snapshot, and the local attach of an LV's own device.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Backend, Cairn, ErrorCode, type Volume } from '../../../src/index.js';
import { type LvmStorage, makeLvmStorage } from '../../drivers/lvm-context.js';
import { rejectsWith } from '../../harness/assert.js';
import { kernelDeviceSize, MiB, pattern, readAt, writeAt } from '../../harness/blockdev.js';
import { listLoops } from '../../harness/loops.js';
import { type TempDir, tempDir } from '../../harness/tmp.js';

interface Lv {
  lv_name: string;
  lv_size: string;
  origin: string;
  origin_size: string;
  lv_attr: string;
  data_percent: string;
  lv_skip_activation: string;
  lv_active: string;
}

async function lvs(st: LvmStorage): Promise<Map<string, Lv>> {
  const out = await st.lvm(
    'lvs',
    '--reportformat',
    'json',
    '--units',
    'b',
    '--nosuffix',
    '-o',
    'lv_name,lv_size,origin,origin_size,lv_attr,data_percent,lv_skip_activation,lv_active',
    st.vg,
  );
  const rows = (JSON.parse(out) as { report: Array<{ lv: Lv[] }> }).report[0]!.lv;
  return new Map(rows.map((r) => [r.lv_name, r]));
}

/** Writes `data` at `offsets` through an attach. */
async function fill(vol: Volume, offsets: number[], data: Buffer): Promise<void> {
  const conn = await vol.attach();
  try {
    await writeAt(conn.path!, offsets, data);
  } finally {
    await vol.detach();
  }
}

async function holds(vol: Volume, offset: number, data: Buffer): Promise<boolean> {
  const conn = await vol.attach({ mode: 'ro' });
  try {
    return (await readAt(conn.path!, offset, data.length)).equals(data);
  } finally {
    await vol.detach();
  }
}

/** Milliseconds `fn` takes, reported as a test diagnostic. */
async function timed<T>(
  t: { diagnostic(msg: string): void },
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  const t0 = performance.now();
  const r = await fn();
  t.diagnostic(`timing: ${what}: ${Math.round(performance.now() - t0)} ms`);
  return r;
}

describe('lvm driver in the VM', () => {
  let thinSt: LvmStorage;
  let thickSt: LvmStorage;
  let state: TempDir;
  let cairn: Cairn;
  let thin: Backend;
  let thick: Backend;

  before(async () => {
    thinSt = await makeLvmStorage({ sizeMiB: 512, poolMiB: 256 });
    thickSt = await makeLvmStorage({ sizeMiB: 256 });
    state = await tempDir('cairn-lvm-state-');
    cairn = await Cairn.open({ state: `sqlite:${state.path}/s.db` });
    thin = await cairn.addBackend('thin', {
      driver: 'lvm',
      volumeGroup: thinSt.vg,
      thinPool: 'pool',
      lvmConf: thinSt.lvmConf,
    });
    thick = await cairn.addBackend('thick', {
      driver: 'lvm',
      volumeGroup: thickSt.vg,
      lvmConf: thickSt.lvmConf,
    });
  });

  after(async () => {
    for (const c of await cairn.connections().catch(() => []))
      await c.disconnect({ force: true }).catch(() => {});
    await cairn?.close();
    await thinSt?.remove();
    await thickSt?.remove();
    await state?.cleanup();
  });

  it('reports thin and thick capabilities', () => {
    assert.equal(thin.capabilities.thin, true);
    assert.equal(thin.capabilities.cloneSpeed, 'instant');
    assert.equal(thick.capabilities.thin, false);
    assert.equal(thick.capabilities.cloneSpeed, 'copy');
    assert.deepEqual(thin.capabilities.protocols, ['local']);
    assert.equal(thin.capabilities.sizeAlignment, MiB, 'the VG extent size');
  });

  it('thin: snapshots, clones and volumes from snapshots are independent LVs', async (t) => {
    const vol = await timed(t, 'thin create 64 MiB', () => thin.createVolume({ size: 64 * MiB }));
    const a = pattern('thin-a');
    await fill(vol, [0, 40 * MiB], a);
    const snap = await timed(t, 'thin snapshot', () => vol.createSnapshot());
    const clone = await timed(t, 'thin clone', () => vol.clone());
    const restored = await timed(t, 'thin volume from snapshot', () => snap.createVolume());
    const lv = await lvs(thinSt);
    const snapLv = lv.get(`_snapshot-${snap.id}`)!;
    assert.equal(snapLv.origin, `volume-${vol.id}`);
    assert.equal(snapLv.lv_skip_activation, 'skip activation', 'a snapshot keeps no device active');
    assert.equal(snapLv.lv_active, '');
    assert.equal(lv.get(`volume-${clone.id}`)!.lv_skip_activation, '', 'a clone is an ordinary volume');
    assert.equal(lv.get(`volume-${restored.id}`)!.origin, `_snapshot-${snap.id}`);

    await fill(vol, [0], pattern('thin-b'));
    await snap.delete(); // the volume made from it stays whole
    await timed(t, 'thin delete', () => vol.delete()); // so do the clone of it
    assert.ok(await holds(clone, 0, a), 'the clone keeps its data after its source is gone');
    assert.ok(await holds(clone, 40 * MiB, a));
    assert.ok(
      await holds(restored, 0, a),
      'the volume from a snapshot keeps its data after the snapshot is gone',
    );
    await clone.delete();
    await restored.delete();
    assert.equal((await thin.stats()).volumeCount, 0);
  });

  it('thick: a COW snapshot takes its volume’s size and survives a full overwrite', async (t) => {
    const vol = await timed(t, 'thick create 32 MiB (zeroed)', () => thick.createVolume({ size: 32 * MiB }));
    const a = pattern('thick-a');
    await fill(vol, [0, 31 * MiB], a);
    const snap = await timed(t, 'thick snapshot', () => vol.createSnapshot());
    let snapLv = (await lvs(thickSt)).get(`_snapshot-${snap.id}`)!;
    assert.equal(Number(snapLv.origin_size), 32 * MiB);
    assert.ok(
      Number(snapLv.lv_size) > 32 * MiB,
      `the COW area (${snapLv.lv_size}) exceeds the volume's size`,
    );
    // Every block of the volume changes: the COW area must hold them all.
    const b = pattern('thick-b');
    await fill(
      vol,
      Array.from({ length: 32 }, (_, i) => i * MiB),
      b,
    );
    snapLv = (await lvs(thickSt)).get(`_snapshot-${snap.id}`)!;
    assert.notEqual(snapLv.lv_attr[4], 'I', 'the snapshot is not invalidated');
    assert.ok(Number(snapLv.data_percent) < 100, `COW use ${snapLv.data_percent}%`);
    const restored = await timed(t, 'thick volume from snapshot 32 MiB (copy)', () => snap.createVolume());
    assert.ok(await holds(restored, 31 * MiB, a), 'the snapshot still has the old data');
    await restored.delete();

    // LVM extends an origin with snapshots only while it is inactive: done for a detached volume.
    await timed(t, 'thick extend of a volume with a snapshot', () => vol.extend(48 * MiB));
    assert.equal(Number((await lvs(thickSt)).get(`volume-${vol.id}`)!.lv_size), 48 * MiB);
    assert.ok(await holds(vol, 40 * MiB, Buffer.alloc(MiB)), 'the new space reads as zeros');
    snapLv = (await lvs(thickSt)).get(`_snapshot-${snap.id}`)!;
    assert.equal(Number(snapLv.origin_size), 32 * MiB, 'the snapshot keeps its size');
    assert.notEqual(snapLv.lv_attr[4], 'I', 'and stays valid');
    await rejectsWith(vol.delete(), ErrorCode.InvalidState, snap.id);
    await snap.delete();
    await timed(t, 'thick delete', () => vol.delete());
    assert.deepEqual([...(await lvs(thickSt)).keys()], []);
  });

  it('refuses a missing volume group or thin pool at addBackend, naming it', async () => {
    await rejectsWith(
      cairn.addBackend('novg', { driver: 'lvm', volumeGroup: 'no-such-vg', lvmConf: thinSt.lvmConf }),
      ErrorCode.InvalidArgument,
      'no-such-vg',
    );
    await rejectsWith(
      cairn.addBackend('nopool', {
        driver: 'lvm',
        volumeGroup: thinSt.vg,
        thinPool: 'no-such-pool',
        lvmConf: thinSt.lvmConf,
      }),
      ErrorCode.InvalidArgument,
      'no-such-pool',
    );
    const plain = await thick.createVolume({ size: 4 * MiB });
    await rejectsWith(
      cairn.addBackend('notapool', {
        driver: 'lvm',
        volumeGroup: thickSt.vg,
        thinPool: `volume-${plain.id}`,
        lvmConf: thickSt.lvmConf,
      }),
      ErrorCode.InvalidArgument,
      'not a thin pool',
    );
    await plain.delete();
    assert.deepEqual(
      cairn.backends.map((x) => x.name),
      ['thin', 'thick'],
    );
  });

  it('thick: refuses what does not fit before making anything', async () => {
    const free = (await thick.stats()).freeBytes;
    const before = [...(await lvs(thickSt)).keys()];
    await rejectsWith(thick.createVolume({ size: free + 64 * MiB }), ErrorCode.InsufficientCapacity);
    const big = await thick.createVolume({ size: Math.floor((free * 0.6) / MiB) * MiB });
    // A COW snapshot needs the volume's size again; a clone needs it twice (copy + temporary snapshot).
    await rejectsWith(big.createSnapshot(), ErrorCode.InsufficientCapacity);
    await rejectsWith(big.clone(), ErrorCode.InsufficientCapacity);
    assert.deepEqual([...(await lvs(thickSt)).keys()], [...before, `volume-${big.id}`]);
    assert.deepEqual(await big.snapshots(), []);
    assert.equal((await thick.volumes()).length, 1);
    await big.delete();
  });

  it('refuses an LV name that is taken and leaves that LV alone', async () => {
    const id = '0f0f0f0f-aaaa-bbbb-cccc-121212121212';
    await thinSt.lvm(
      'lvcreate',
      '-q',
      '--type',
      'thin',
      '--virtualsize',
      '4m',
      '--thinpool',
      'pool',
      '--name',
      `volume-${id}`,
      thinSt.vg,
    );
    const mark = pattern('not-cairns');
    await writeAt(`/dev/${thinSt.vg}/volume-${id}`, [0], mark);
    await rejectsWith(thin.createVolume({ size: 8 * MiB, id }), ErrorCode.AlreadyExists);
    const lv = (await lvs(thinSt)).get(`volume-${id}`);
    assert.equal(Number(lv?.lv_size), 4 * MiB, 'the LV is untouched');
    assert.ok((await readAt(`/dev/${thinSt.vg}/volume-${id}`, 0, MiB)).equals(mark));
    assert.deepEqual(await thin.volumes(), []);
    await thinSt.lvm('lvremove', '-q', '--yes', `${thinSt.vg}/volume-${id}`);
  });

  for (const kind of ['thin', 'thick'] as const) {
    it(`${kind}: revert keeps the snapshot and can be repeated`, async (t) => {
      const backend = kind === 'thin' ? thin : thick;
      const st = kind === 'thin' ? thinSt : thickSt;
      const vol = await backend.createVolume({ size: 16 * MiB });
      const a = pattern(`${kind}-rev-a`);
      await fill(vol, [0], a);
      const snap = await vol.createSnapshot();
      await fill(vol, [0], pattern(`${kind}-rev-b`));
      await timed(t, `${kind} revert 16 MiB`, () => vol.revertToSnapshot(snap));
      assert.ok(await holds(vol, 0, a));
      assert.ok((await lvs(st)).has(`_snapshot-${snap.id}`), 'the snapshot LV stays');
      await fill(vol, [0], pattern(`${kind}-rev-c`));
      await vol.revertToSnapshot(snap);
      assert.ok(await holds(vol, 0, a), 'a second revert from the same snapshot');
      const names = [...(await lvs(st)).keys()].sort();
      const expected = [`_snapshot-${snap.id}`, ...(kind === 'thin' ? ['pool'] : []), `volume-${vol.id}`];
      assert.deepEqual(names, expected.sort(), 'the snapshot stays, no temporary is left');
      await snap.delete();
      await vol.delete();
    });
  }

  it('hands out the LV’s own device for a read-write attach, a read-only loop for a read-only one', async () => {
    const vol = await thin.createVolume({ size: 8 * MiB });
    const conn = await vol.attach();
    assert.match(conn.path!, /^\/dev\/dm-\d+$/);
    assert.equal(conn.info.data.path, `/dev/${thinSt.vg}/volume-${vol.id}`);
    assert.equal(await kernelDeviceSize(conn.path!), 8 * MiB);
    await vol.extend(16 * MiB);
    assert.equal(await kernelDeviceSize(conn.path!), 16 * MiB, 'the device grows online');
    await vol.detach();
    const ro = await vol.attach({ mode: 'ro' });
    const loop = (await listLoops()).find((l) => l.name === ro.path);
    assert.equal(loop?.readOnly, true);
    assert.equal(loop?.backFile, `${thinSt.mapperPrefix}volume--${vol.id.replaceAll('-', '--')}`);
    await vol.detach();
    assert.equal(
      (await listLoops()).find((l) => l.name === ro.path && l.backFile === loop?.backFile),
      undefined,
    );
    await vol.delete();
  });
});
