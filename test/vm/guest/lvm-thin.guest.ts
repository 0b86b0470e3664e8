// The driver conformance suite against the lvm driver with a thin pool, without an export
// (local attaches of the LVs' own devices). Runs in the test VM only (device-mapper):
// test/vm/lvm-thin.test.ts boots it.
//
// Under TCG every LVM command takes ~0.3-0.5 s, and a test file gets 5 minutes in all (less
// than half of it on a loaded machine): by default the invalid-input group, which tests Cairn's
// own validation (the lvm-specific "no space" cases are in lvm.guest.ts), is left out.
// CAIRN_VM_LVM_FULL=1 runs every group.
import { runDriverConformance } from '../../conformance/driver.js';
import { lvmContext } from '../../drivers/lvm-context.js';

runDriverConformance(
  'lvm thin',
  () => lvmContext({ thin: true }),
  process.env.CAIRN_VM_LVM_FULL === '1'
    ? {}
    : { groups: ['lifecycle', 'data', 'concurrency', 'manage', 'invalidConfig'] },
);
