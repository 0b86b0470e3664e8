import { randomUUID } from 'node:crypto';
import { invalidArgument } from './errors.js';

// Names reach file names, command lines and log lines; an allow-list keeps them boring.
const NAME_RE = /^[\p{L}\p{N}][\p{L}\p{N}._:@+-]{0,254}$/u;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * Validates a user-chosen object name: 1–255 letters, digits and `._:@+-`, starting with a letter
 * or digit; no path separators, `..`, NUL, whitespace or shell metacharacters.
 */
export function validateName(value: unknown, field = 'name'): string {
  if (typeof value !== 'string' || !NAME_RE.test(value) || value.includes('..')) {
    throw invalidArgument(
      `${field}: invalid name ${JSON.stringify(value)}; allowed: 1-255 letters, digits and "._:@+-", starting with a letter or digit, without ".."`,
    );
  }
  return value;
}

/** Validates an object id: 1–64 ASCII letters, digits, `_` and `-` (UUIDs qualify). */
export function validateId(value: unknown, field = 'id'): string {
  if (typeof value !== 'string' || !ID_RE.test(value)) {
    throw invalidArgument(
      `${field}: invalid id ${JSON.stringify(value)}; allowed: 1-64 ASCII letters, digits, "_" and "-", such as a UUID`,
    );
  }
  return value;
}

/** A new random object id (UUID v4). */
export function newId(): string {
  return randomUUID();
}
