import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runNodeTestsInVm } from '../harness/vm.js';

// The iSCSI exporters (LIO, tgt) and the open-iscsi connector with dm-multipath need kernel
// features this host lacks (no iSCSI initiator, no LIO, no device-mapper): the whole scenario
// runs in ONE guest boot (test/vm/guest/iscsi.guest.ts), target and initiator side by side.

describe('iSCSI: LIO and tgt exporters, open-iscsi connector, multipath, in the test VM', () => {
  test('every guest scenario passes', { timeout: 10 * 60 * 1000 }, async (t) => {
    const r = await runNodeTestsInVm(['dist/test/vm/guest/iscsi.guest.js'], { timeoutMs: 6 * 60 * 1000 });
    t.diagnostic(`kernel ${r.kernel}: boot ${r.bootMs} ms, total ${r.totalMs} ms`);
    for (const l of r.output.split('\n').filter((x) => /^\s*# (lio timings|tgt timings|cairn:)/.test(x)))
      t.diagnostic(l.trim().replace(/^# /, ''));
    assert.equal(
      r.exitCode,
      0,
      `guest tests failed:\n${r.output}\n--- stderr ---\n${r.stderr}\n--- console (tail) ---\n${r.console.slice(-4000)}`,
    );
    assert.match(r.output, /# pass [1-9]/);
    assert.match(r.output, /# fail 0/);
  });
});
