import { describe, test } from 'node:test';
import { runGuestSuite } from '../harness/vm-suite.js';

// The lvm driver needs device-mapper, which this host's kernel lacks. One guest boot runs the
// driver's own cases (test/vm/guest/lvm.guest.ts) and the conformance suite against thick LVs
// (lvm-thick.guest.ts); lvm-thin.test.ts boots a second guest for the thin pool variant, so that
// each file stays within the 5 minutes scripts/run-tests.mjs gives a test file, also when the
// two run side by side on a busy machine.
//
// CAIRN_VM_LVM_FULL=1 runs every conformance group of both variants (~5 min per file on a quiet
// machine): run the file with node --test --test-timeout=1500000, not scripts/run-tests.mjs.

const full = process.env.CAIRN_VM_LVM_FULL === '1';
const timeoutMs = full ? 20 * 60_000 : 285_000;

describe('lvm driver in the test VM: its own cases and the conformance suite, thick', () => {
  test('every guest test passes', { timeout: timeoutMs + 5000 }, (t) =>
    runGuestSuite(t, ['dist/test/vm/guest/lvm.guest.js', 'dist/test/vm/guest/lvm-thick.guest.js'], {
      timeoutMs,
      env: full ? { CAIRN_VM_LVM_FULL: '1' } : {},
    }),
  );
});
