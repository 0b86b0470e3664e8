import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, formatSize, parseSize } from '../../src/index.js';
import { throwsWith } from '../harness/assert.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('parseSize', () => {
  it('reads bytes, binary and decimal units, case-insensitively, with or without a space', () => {
    const cases: Array<[unknown, number]> = [
      [1, 1],
      [4096n, 4096],
      ['512', 512],
      ['1K', KiB],
      ['1k', KiB],
      ['1KB', 1000],
      ['1kib', KiB],
      ['10GiB', 10 * GiB],
      ['10 GiB', 10 * GiB],
      [' 2G ', 2 * GiB],
      ['2GB', 2e9],
      ['1.5GiB', 1610612736],
      ['0.5KiB', 512],
      ['3M', 3 * MiB],
      ['1TiB', 1024 ** 4],
      ['1tb', 1e12],
      ['2P', 2 * 1024 ** 5],
      ['7b', 7],
      [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
      [BigInt(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
      [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
    ];
    for (const [input, bytes] of cases) assert.equal(parseSize(input), bytes, `parseSize(${String(input)})`);
  });

  it('refuses zero, negative, fractional, non-numeric, unknown units and too large, naming the field', () => {
    const bad: unknown[] = [
      0,
      '0',
      '0GiB',
      -1,
      '-1',
      '-1GiB',
      -0.5,
      1.5,
      '1.5',
      '0.3KiB', // 307.2 bytes
      'abc',
      '1x',
      'GiB',
      '',
      ' ',
      '1 2',
      '1e3',
      '0x10',
      '1,5G',
      '1GiB extra',
      Number.NaN,
      Number.POSITIVE_INFINITY,
      2 ** 53,
      '8PiB',
      BigInt(2 ** 53),
      null,
      undefined,
      true,
      {},
      [1],
    ];
    for (const input of bad) {
      const err = throwsWith(() => parseSize(input, 'wanted'), ErrorCode.InvalidArgument, 'wanted');
      assert.match(err.message, /allowed/, 'the message says what is allowed');
    }
  });

  it('accepts every whole number of bytes up to 2^53-1, as a number and as text', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (n) => {
        assert.equal(parseSize(n), n);
        assert.equal(parseSize(String(n)), n);
        assert.equal(parseSize(BigInt(n)), n);
      }),
    );
  });

  it('multiplies by the unit exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 20 }),
        fc.constantFrom(['K', KiB], ['MiB', MiB], ['GB', 1e9]),
        (k, [unit, factor]) => {
          assert.equal(parseSize(`${k}${unit}`), k * (factor as number));
        },
      ),
    );
  });
});

describe('formatSize', () => {
  it('formats for humans in binary units', () => {
    assert.equal(formatSize(0), '0 B');
    assert.equal(formatSize(1023), '1023 B');
    assert.equal(formatSize(KiB), '1 KiB');
    assert.equal(formatSize(1536), '1.5 KiB');
    assert.equal(formatSize(1610612736), '1.5 GiB');
    assert.equal(formatSize(10 * GiB), '10 GiB');
    assert.equal(formatSize(1024 ** 5 * 3), '3 PiB');
    assert.equal(formatSize(1024 ** 6), '1024 PiB');
  });

  it('is read back exactly by parseSize for whole multiples of a unit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1023 }), fc.integer({ min: 0, max: 5 }), (k, power) => {
        const bytes = k * 1024 ** power;
        fc.pre(bytes <= Number.MAX_SAFE_INTEGER); // 8 PiB and up are out of range by design
        assert.equal(parseSize(formatSize(bytes)), bytes);
      }),
    );
  });
});
