import type { z } from 'zod';
import { invalidArgument } from './errors.js';
import { isSecretField, withoutSecrets } from './redact.js';

/**
 * Parses `input` with a zod schema and turns a failure into one INVALID_ARGUMENT error that
 * names each field path, the value given and what is allowed.
 */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.length ? issue.path.join('.') : '(root)';
    const keys = issue.path as PropertyKey[];
    let given = valueAt(input, keys);
    // For unknown fields, show those fields, not the whole object (which may hold secrets).
    if (issue.code === 'unrecognized_keys' && given !== null && typeof given === 'object')
      given = Object.fromEntries(issue.keys.map((k) => [k, (given as Record<string, unknown>)[k]]));
    const unknownKeys =
      issue.code === 'unrecognized_keys' ? ` (unknown field: ${issue.keys.join(', ')})` : '';
    const secret = keys.some((k) => typeof k === 'string' && isSecretField(k));
    const shown = secret
      ? '(a secret, not shown)'
      : given === undefined
        ? 'nothing'
        : JSON.stringify(withoutSecrets(given));
    // Cairn's own validators (sizes, names, ids) name the value in their message already.
    const valueShown =
      issue.code === 'custom' && (issue.params as { valueShown?: boolean } | undefined)?.valueShown;
    return valueShown ? `${path}: ${issue.message}` : `${path}: ${issue.message}${unknownKeys}; got ${shown}`;
  });
  throw invalidArgument(`invalid ${what}: ${problems.join('; ')}`, { details: { problems } });
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  if (typeof v === 'string' && v.length > 80) return `${v.slice(0, 80)}…`;
  return v;
}
