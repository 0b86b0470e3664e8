// The driver conformance suite against the lvm driver without a thin pool (thick LVs, COW
// snapshots, copies), without an export. Runs in the test VM only: test/vm/lvm.test.ts boots it.
//
// By default only the groups where thick LVs behave differently from thin ones (create, copy,
// snapshot, revert, manage, attach and I/O): the concurrency and validation groups exercise the
// same LVM commands and the same config schema as in lvm-thin.guest.ts, and a test file gets 5
// minutes in all. CAIRN_VM_LVM_FULL=1 runs every group.
import { runDriverConformance } from '../../conformance/driver.js';
import { lvmContext } from '../../drivers/lvm-context.js';

runDriverConformance(
  'lvm thick',
  () => lvmContext({ thin: false }),
  process.env.CAIRN_VM_LVM_FULL === '1' ? {} : { groups: ['lifecycle', 'data', 'manage'] },
);
