import { invalidArgument } from './errors.js';

/** A size given by a user: a whole number of bytes, or a string such as `'10GiB'` or `'512MiB'`. */
export type SizeInput = number | bigint | string;

const UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
  p: 1024 ** 5,
  pb: 1000 ** 5,
  pib: 1024 ** 5,
};

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/**
 * Parses a size into a positive whole number of bytes. Bare letters (`G`, `M`) mean binary
 * units like `qemu-img` and `truncate`; `GB`/`MB` are decimal; `GiB`/`MiB` binary.
 * @example parseSize('1.5GiB') // 1610612736
 * @throws CairnError INVALID_ARGUMENT naming `field` for zero, negative, fractional bytes,
 *   unknown units or sizes past 2^53.
 */
export function parseSize(input: unknown, field = 'size'): number {
  const allowed = 'a positive whole number of bytes or a string such as "10GiB", "512MiB", "1G"';
  const fail = (why: string) =>
    invalidArgument(`${field}: ${why} (got ${JSON.stringify(show(input))}); allowed: ${allowed}`);
  let bytes: number;
  if (typeof input === 'bigint') {
    if (input > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('too large');
    bytes = Number(input);
  } else if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw fail('not a finite number');
    bytes = input;
  } else if (typeof input === 'string') {
    const m = SIZE_RE.exec(input.trim());
    if (!m) throw fail('not a size');
    const unit = UNITS[(m[2] ?? '').toLowerCase() || 'b'];
    if (unit === undefined) throw fail(`unknown unit "${m[2]}"`);
    bytes = Number(m[1]) * unit;
  } else {
    throw fail('not a size');
  }
  if (bytes <= 0) throw fail('must be greater than zero');
  if (!Number.isInteger(bytes)) throw fail('is not a whole number of bytes');
  if (bytes > Number.MAX_SAFE_INTEGER) throw fail('too large');
  return bytes;
}

function show(v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/** Rounds `bytes` up to a multiple of `alignment`. */
export function alignUp(bytes: number, alignment: number): number {
  return Math.ceil(bytes / alignment) * alignment;
}

/** Formats bytes for humans: `1.5 GiB`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${Number(v.toFixed(2))} ${units[i]}`;
}
