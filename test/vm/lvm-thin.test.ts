import { describe, test } from 'node:test';
import { runGuestSuite } from '../harness/vm-suite.js';

// The conformance suite against the lvm driver with a thin pool, in its own guest boot: see
// lvm.test.ts for why the lvm tests take two, and for CAIRN_VM_LVM_FULL.

const full = process.env.CAIRN_VM_LVM_FULL === '1';
const timeoutMs = full ? 20 * 60_000 : 285_000;

describe('lvm driver in the test VM: the conformance suite, thin', () => {
  test('every guest test passes', { timeout: timeoutMs + 5000 }, (t) =>
    runGuestSuite(t, ['dist/test/vm/guest/lvm-thin.guest.js'], {
      timeoutMs,
      env: full ? { CAIRN_VM_LVM_FULL: '1' } : {},
    }),
  );
});
