import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ErrorCode } from '../../src/index.js';
import { newId, validateId, validateName } from '../../src/util/names.js';
import { throwsWith } from '../harness/assert.js';

describe('names', () => {
  it('accepts letters, digits and ._:@+- in any script, up to 255 characters', () => {
    for (const name of [
      'a',
      'data',
      'db-01',
      'v1.2',
      'x_y',
      'a:b',
      'user@host',
      'c++',
      '9lives',
      'データ',
      'ñandú',
      'Ωmega',
      'a'.repeat(255),
    ])
      assert.equal(validateName(name), name);
  });

  it('refuses path separators, "..", NUL, whitespace, shell metacharacters and bad starts', () => {
    const bad = [
      '',
      'a/b',
      '/abs',
      'a\\b',
      '..',
      'a..b',
      '../x',
      '.hidden',
      '-opt',
      '_x',
      'a\0b',
      'a b',
      'a\tb',
      'a\nb',
      'a;b',
      '$(x)',
      '`x`',
      'a|b',
      'a&b',
      'a>b',
      'a<b',
      "a'b",
      'a"b',
      'a*b',
      'a?b',
      'a$b',
      'a!b',
      'a#b',
      'a%b',
      'a{b}',
      'a(b)',
      'a[b]',
      'a~b',
      'a=b',
      'a,b',
      '😀',
      'a'.repeat(256),
    ];
    for (const name of bad)
      throwsWith(() => validateName(name, 'volume name'), ErrorCode.InvalidArgument, 'volume name');
    for (const notString of [null, undefined, 5, {}, ['a']])
      throwsWith(() => validateName(notString), ErrorCode.InvalidArgument, 'name');
  });

  it('never accepts a name that could escape a path, a command line or a log line', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        let ok = true;
        try {
          validateName(s);
        } catch {
          ok = false;
        }
        if (ok) {
          assert.ok(!/[/\\\0\s;$`|&<>'"*?()]/.test(s), `accepted ${JSON.stringify(s)}`);
          assert.ok(!s.includes('..') && !s.startsWith('-') && !s.startsWith('.'));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('ids', () => {
  it('accepts UUIDs and 1-64 ASCII letters, digits, "_" and "-"', () => {
    for (const id of [newId(), 'a', 'A_b-9', 'x'.repeat(64), '0']) assert.equal(validateId(id), id);
  });

  it('refuses anything else', () => {
    for (const id of ['', '-a', '_a', 'a/b', 'a.b', '..', 'x'.repeat(65), 'é', 'a b', 'a;b', 'a\0'])
      throwsWith(() => validateId(id, 'snapshot id'), ErrorCode.InvalidArgument, 'snapshot id');
    throwsWith(() => validateId(42), ErrorCode.InvalidArgument);
  });

  it('makes new ids that are unique version-4 UUIDs', () => {
    const ids = Array.from({ length: 1000 }, newId);
    assert.equal(new Set(ids).size, 1000);
    for (const id of ids)
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
