import assert from 'node:assert/strict';
import { type CairnError, type ErrorCode, isCairnError } from '../../src/util/errors.js';

/**
 * Asserts that `action` rejects with a CairnError of `code` whose message contains every string
 * in `mentions`; returns the error for further checks.
 */
export async function rejectsWith(
  action: Promise<unknown> | (() => Promise<unknown>),
  code: ErrorCode,
  ...mentions: string[]
): Promise<CairnError> {
  let caught: unknown;
  try {
    await (typeof action === 'function' ? action() : action);
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) assert.fail(`expected a CairnError ${code}, but it succeeded`);
  assert.ok(isCairnError(caught), `expected a CairnError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `wrong code; message: ${caught.message}`);
  for (const m of mentions)
    assert.ok(caught.message.includes(m), `message should mention ${m}: ${caught.message}`);
  return caught;
}

/** Same as {@link rejectsWith} for a synchronous call. */
export function throwsWith(action: () => unknown, code: ErrorCode, ...mentions: string[]): CairnError {
  let caught: unknown;
  try {
    action();
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) assert.fail(`expected a CairnError ${code}, but it succeeded`);
  assert.ok(isCairnError(caught), `expected a CairnError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `wrong code; message: ${caught.message}`);
  for (const m of mentions)
    assert.ok(caught.message.includes(m), `message should mention ${m}: ${caught.message}`);
  return caught;
}
