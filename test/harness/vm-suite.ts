import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { runNodeTestsInVm } from './vm.js';

/**
 * Boots one test VM, runs guest-side node test files in it (`dist/test/vm/guest/*.guest.js`),
 * reports the guest's summary and timings as diagnostics of `t`, and fails with the failing
 * cases, the output and the console tail unless every guest test passed.
 */
export async function runGuestSuite(
  t: TestContext,
  files: readonly string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 15 * 60_000;
  const r = await runNodeTestsInVm([...files], {
    timeoutMs,
    ...(opts.env ? { env: opts.env } : {}),
    // One guest file holds several suites: its own bound is the VM's, not node's 5 minutes.
    nodeArgs: [`--test-timeout=${timeoutMs}`],
  });
  const lines = r.output.split('\n');
  const summary = lines
    .filter((l) => /^# (tests|pass|fail|cancelled|skipped|duration_ms) /.test(l))
    .map((l) => l.slice(2))
    .join(', ');
  t.diagnostic(`kernel ${r.kernel}: boot ${r.bootMs} ms, total ${r.totalMs} ms; ${summary}`);
  for (const l of lines.filter((x) => /^\s*# timing: /.test(x))) t.diagnostic(l.trim().replace(/^# /, ''));
  const failed = lines.filter((l) => /^\s*not ok /.test(l));
  assert.equal(
    r.exitCode,
    0,
    `guest tests failed: ${failed.join('; ')}\n${r.output}\n--- stderr ---\n${r.stderr}\n--- console (tail) ---\n${r.console.slice(-4000)}`,
  );
  assert.match(r.output, /^# pass [1-9]/m);
  assert.match(r.output, /^# fail 0$/m);
  assert.match(r.output, /^# skipped 0$/m, 'no guest test may be skipped');
}
