import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { invalidArgument } from '../../util/errors.js';

/** Longest path accepted from a request (Linux PATH_MAX). The spec asks for at least 128 bytes. */
const MAX_PATH = 4096;

/**
 * Checks a path taken from a request before it reaches a command or the file system: absolute,
 * no NUL or control characters, already normalized (no `.`, `..`, `//` or trailing `/`).
 * Paths are compared as strings later (mount table, records), so only one spelling is accepted.
 * @returns the path itself
 */
export function checkPath(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalidArgument(`${field} is required`);
  if (Buffer.byteLength(value) > MAX_PATH) throw invalidArgument(`${field} is longer than ${MAX_PATH} bytes`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw invalidArgument(`${field} contains a NUL or control character`);
  if (!value.startsWith('/')) throw invalidArgument(`${field} must be an absolute path (got ${show(value)})`);
  if (value.split('/').includes('..'))
    throw invalidArgument(`${field} must not contain ".." (got ${show(value)})`);
  if (value === '/' || posix.normalize(value) !== value || value.endsWith('/'))
    throw invalidArgument(`${field} must be a normalized path other than / (got ${show(value)})`);
  return value;
}

/** Checks a volume id from a request: present, at most 256 bytes (ids are never paths). */
export function checkVolumeId(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalidArgument('volume_id is required');
  if (Buffer.byteLength(value) > 256) throw invalidArgument('volume_id is longer than 256 bytes');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalidArgument('volume_id contains a control character');
  return value;
}

/**
 * A file name for a volume id: the id itself when it is a plain name (`v-<id>`), else a hash
 * (`h-<sha256>`); the prefixes keep the two spaces apart.
 */
export function fileNameFor(volumeId: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(volumeId)) return `v-${volumeId}`;
  return `h-${createHash('sha256').update(volumeId).digest('hex')}`;
}

function show(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}
