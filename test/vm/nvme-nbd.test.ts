import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runNodeTestsInVm } from '../harness/vm.js';

// The NVMe-oF (nvmet + nvme-cli) and NBD (qemu-nbd + nbd-client) exports and connectors need
// kernel features this host lacks: both scenarios run in ONE guest boot (test/vm/guest/nvme.guest.ts
// and nbd.guest.ts), the target and the initiator side by side in the guest.

const FILES = ['dist/test/vm/guest/nvme.guest.js', 'dist/test/vm/guest/nbd.guest.js'];

describe('NVMe/TCP and NBD, exporter and connector, in the test VM (one boot)', () => {
  test('every guest scenario passes', { timeout: 10 * 60 * 1000 }, async (t) => {
    const r = await runNodeTestsInVm(FILES, { timeoutMs: 6 * 60 * 1000 });
    // The guest's own diagnostics: timings of export, attach, detach.
    const timings = r.output
      .split('\n')
      .filter((l) => /^\s*# (nvme timings|nbd timings|two-path|forced)/.test(l));
    t.diagnostic(`kernel ${r.kernel}: boot ${r.bootMs} ms, total ${r.totalMs} ms`);
    for (const l of timings) t.diagnostic(l.trim().replace(/^# /, ''));
    assert.equal(
      r.exitCode,
      0,
      `guest tests failed:\n${r.output}\n--- stderr ---\n${r.stderr}\n--- console (tail) ---\n${r.console.slice(-4000)}`,
    );
    assert.match(r.output, /# pass [1-9]/);
    assert.match(r.output, /# fail 0/);
  });
});
