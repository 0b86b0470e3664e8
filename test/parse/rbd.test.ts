import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  parseCephDf,
  parseRbdChildren,
  parseRbdDu,
  parseRbdInfo,
  parseRbdList,
  parseRbdSnapList,
} from '../../src/parse/rbd.js';

// Captured from Ceph 16.2.15 (Debian 12) `rbd … --format json` and `ceph df --format json` on a
// single-node cluster without a mgr. The compiled test runs from dist/: read from the source tree.
const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/parse/fixtures/${name}`, import.meta.url), 'utf8');

describe('rbd JSON parsers', () => {
  it('parses rbd ls -l: images, snapshots and parents', () => {
    const rows = parseRbdList(fixture('rbd-ls-l.json'));
    assert.equal(rows.length, 4);
    assert.deepEqual(rows[0], {
      image: 'c1',
      size: 201326592,
      parent: { pool: 'rbd', namespace: '', image: 'img1', snapshot: 's1' },
    });
    assert.deepEqual(rows[2], { image: 'img1', size: 201326592, snapshot: 's1' });
    assert.deepEqual(parseRbdList(''), []);
  });

  it('parses rbd info of a clone', () => {
    const i = parseRbdInfo(fixture('rbd-info-clone.json'));
    assert.equal(i.name, 'c1');
    assert.equal(i.objectSize, 4194304);
    assert.deepEqual(i.parent, { pool: 'rbd', namespace: '', image: 'img1', snapshot: 's1', trash: false });
    assert.ok(i.features.includes('layering'));
  });

  it('parses snap ls --all with a trashed snapshot, children and du', () => {
    assert.deepEqual(parseRbdSnapList(fixture('rbd-snap-ls-all.json')), [
      { id: 4, name: '2a79273c-993a-4fab-b736-27c2dd668a0f', size: 201326592, namespace: 'trash' },
    ]);
    assert.deepEqual(parseRbdChildren(fixture('rbd-children-all.json')), [
      { pool: 'rbd', namespace: '', image: 'c1', trash: false },
    ]);
    const du = parseRbdDu(fixture('rbd-du.json'));
    assert.equal(du.provisioned, 503316480);
    assert.equal(du.images.length, 4);
    assert.deepEqual(du.images[1], { image: 'img1', snapshot: 's1', provisioned: 201326592, used: 0 });
  });

  it('parses ceph df without a mgr as no pool statistics', () => {
    assert.deepEqual(parseCephDf(fixture('ceph-df-no-mgr.json'), 'rbd'), {
      totalBytes: 0,
      availBytes: 0,
      pool: null,
    });
  });

  it('refuses output that is not JSON', () => {
    assert.throws(() => parseRbdInfo('rbd: error'), { code: 'BACKEND_FAILURE' });
  });
});
