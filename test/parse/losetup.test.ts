import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseLosetupList } from '../../src/parse/losetup.js';

// Fixtures were captured from util-linux 2.38 `losetup -J -l` on Debian 12. The compiled test
// runs from dist/, so they are read from the source tree.
const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/parse/fixtures/${name}`, import.meta.url), 'utf8');

describe('parseLosetupList', () => {
  it('parses devices, read-only flags and deleted backing files', () => {
    const devices = parseLosetupList(fixture('losetup-two-devices.json'));
    assert.deepEqual(devices, [
      {
        name: '/dev/loop1',
        backingFile: '/tmp/fx 2.img',
        backingDeleted: false,
        readOnly: true,
        offset: 0,
        sizeLimit: 0,
      },
      {
        name: '/dev/loop0',
        backingFile: '/tmp/fx1.img',
        backingDeleted: true,
        readOnly: false,
        offset: 0,
        sizeLimit: 0,
      },
    ]);
  });

  it('treats an empty list and empty output as no devices', () => {
    assert.deepEqual(parseLosetupList(fixture('losetup-none-matching.json')), []);
    assert.deepEqual(parseLosetupList(''), []);
  });

  it('refuses output that is not losetup JSON', () => {
    assert.throws(() => parseLosetupList('losetup: oops'), { code: 'BACKEND_FAILURE' });
    assert.throws(() => parseLosetupList('{"other": []}'), { code: 'BACKEND_FAILURE' });
  });
});
