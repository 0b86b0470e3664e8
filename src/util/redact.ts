/**
 * Secrets are recognised by field name, anywhere in a nested value, so a new driver's
 * `chapPassword` or `keyring` is covered without registering it.
 */
const SECRET_FIELD = /pass(word|wd|phrase)?$|secret|token|keyring|^key$|private|credential/i;

/** True when a field of this name holds a secret. */
export function isSecretField(name: string): boolean {
  return SECRET_FIELD.test(name);
}

/** A deep copy of `value` without secret fields (they are left out, not masked). */
export function withoutSecrets<T>(value: T): T {
  return strip(value) as T;
}

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!isSecretField(k)) out[k] = strip(v);
  }
  return out;
}

/** Replaces every occurrence of each secret string in `text` with `***`. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('***');
  return out;
}
