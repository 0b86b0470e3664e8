import { describe, test } from 'node:test';
import { runGuestSuite } from '../harness/vm-suite.js';

// The driver conformance suite (attach, I/O, extend while attached, read-only, concurrency) over
// network exports, in the test VM: lvm thin + NVMe-oF/TCP through nvmet. One file per guest, so guests run side by side.
describe('conformance over exports in the test VM: lvm + NVMe-oF/TCP', () => {
  test('passes', { timeout: 20 * 60_000 }, async (t) => {
    await runGuestSuite(t, ['dist/test/vm/guest/exports-conformance.guest.js'], {
      env: { CAIRN_VM_EXPORTS: 'lvm-nvmeof' },
    });
  });
});
