import { describe, test } from 'node:test';
import { runGuestSuite } from '../harness/vm-suite.js';

// The driver conformance suite (attach, I/O, extend while attached, read-only, concurrency) over
// network exports, in the test VM: lvm thin + iSCSI through LIO with two portals and dm-multipath. One file per guest, so guests run side by side.
describe('conformance over exports in the test VM: lvm + iSCSI (LIO, multipath)', () => {
  test('passes', { timeout: 20 * 60_000 }, async (t) => {
    await runGuestSuite(t, ['dist/test/vm/guest/exports-conformance.guest.js'], {
      env: { CAIRN_VM_EXPORTS: 'lvm-lio-multipath' },
    });
  });
});
