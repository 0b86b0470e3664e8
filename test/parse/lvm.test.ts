import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isCowOrigin, isCowSnapshot, isThinPool, parseVgReport, parseVgs } from '../../src/parse/lvm.js';

// Captured from LVM 2.03.16 (Debian 12) in the test VM with
// `vgs --reportformat json --units b --nosuffix -o <VG_FIELDS>,<LV_FIELDS> VG` (and VG_FIELDS
// alone for vgs-vg-only.json). The compiled test runs from dist/: read from the source tree.
const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/lvm/${name}`, import.meta.url), 'utf8');

describe('LVM report parsers', () => {
  it('parses a VG with a thin pool, thin volumes, a thin snapshot and a plain LV', () => {
    const r = parseVgReport(fixture('vgs-thin.json'));
    assert.deepEqual(r.vg, { name: 'cairnthin', size: 1072693248, free: 791674880, extentSize: 1048576 });
    assert.deepEqual(
      r.lvs.map((l) => l.name),
      ['pool', 'volume-1a2b', '_snapshot-3c4d', 'volume-5e6f', 'legacy'],
    );
    const [pool, vol, snap, clone, legacy] = r.lvs;
    assert.ok(pool && isThinPool(pool));
    assert.equal(pool.dataPercent, 1.56);
    assert.deepEqual(vol, {
      name: 'volume-1a2b',
      size: 67108864,
      origin: null,
      originSize: null,
      pool: 'pool',
      layout: ['thin', 'sparse'],
      roles: ['public', 'origin', 'thinorigin'],
      attr: 'Vwi-aotz--',
      dataPercent: 6.25,
      active: true,
      skipActivation: false,
      open: true,
    });
    assert.equal(snap?.origin, 'volume-1a2b');
    assert.equal(snap?.skipActivation, true);
    assert.equal(snap?.active, false);
    assert.equal(snap?.dataPercent, null, 'an inactive thin LV reports no usage');
    assert.equal(snap?.open, null, 'nor whether it is open');
    assert.equal(clone?.origin, '_snapshot-3c4d');
    assert.equal(clone?.size, 100663296);
    assert.equal(legacy?.pool, null);
    assert.ok(!isThinPool(vol) && !isCowSnapshot(vol!) && !isCowOrigin(vol!), 'thin snapshots are not COW');
  });

  it('parses a thick VG: an extended LV once (not per segment), a COW origin and snapshot', () => {
    const r = parseVgReport(fixture('vgs-thick.json'));
    assert.equal(r.vg?.extentSize, 4194304);
    const [vol, spacer, snap] = r.lvs;
    assert.equal(r.lvs.length, 3);
    assert.ok(vol && isCowOrigin(vol) && !isCowSnapshot(vol));
    assert.equal(vol.size, 48 * 1024 * 1024);
    assert.ok(snap && isCowSnapshot(snap));
    assert.equal(snap.size, 52 * 1024 * 1024, 'a COW snapshot’s size is its COW area');
    assert.equal(snap.originSize, 48 * 1024 * 1024, 'and its origin_size the volume’s size');
    assert.equal(snap.dataPercent, 3.88);
    assert.equal(spacer?.active, false);
  });

  it('gives no VG for a VG without LVs, and reads the VG alone', () => {
    assert.deepEqual(parseVgReport(fixture('vgs-empty-vg.json')), { vg: null, lvs: [] });
    assert.deepEqual(parseVgs(fixture('vgs-vg-only.json')), {
      name: 'cairnthick',
      size: 1069547520,
      free: 1069547520,
      extentSize: 4194304,
    });
    assert.equal(parseVgs(fixture('vgs-missing.json')), null);
  });

  it('refuses output that is not an LVM report', () => {
    assert.throws(() => parseVgReport('  Volume group "x" not found'), { code: 'BACKEND_FAILURE' });
    assert.throws(() => parseVgReport('{"report": []}'), { code: 'BACKEND_FAILURE' });
    const bad = fixture('vgs-thin.json').replace('"lv_size":"67108864"', '"lv_size":"64m"');
    assert.throws(() => parseVgReport(bad), { code: 'BACKEND_FAILURE', message: /lv_size/ });
  });
});
