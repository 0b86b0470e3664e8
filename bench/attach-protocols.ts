import { runInVm } from '../test/harness/vm.js';
import type { Benchmark } from './context.js';
import { type CaseResult, notRun } from './report.js';

const NAME = 'attach-protocols';

/**
 * Attach and detach over iSCSI, NVMe-oF/TCP and NBD, against the raw initiator tools. This
 * host's kernel has no initiators, so it runs in the test VM (test/harness/vm.ts): one boot.
 */
export const attachProtocols: Benchmark = {
  name: NAME,
  description:
    'attach+detach over iSCSI (LIO), NVMe-oF/TCP (nvmet) and NBD (qemu-nbd) in the test VM, through Cairn vs iscsiadm / nvme connect / nbd-client',
  async run(ctx) {
    try {
      const r = await runInVm({
        script: 'node dist/bench/guest/attach-protocols.js',
        env: { CAIRN_BENCH_ROUNDS: ctx.quick ? '2' : '10' },
        timeoutMs: 15 * 60_000,
      });
      const line = r.stdout.split('\n').find((l) => l.startsWith('CAIRN-BENCH-RESULTS '));
      if (r.exitCode !== 0 || !line)
        return [notRun(NAME, 'all protocols', 'error', `guest exit ${r.exitCode}: ${r.stderr.slice(-2000)}`)];
      const results = JSON.parse(line.slice('CAIRN-BENCH-RESULTS '.length)) as CaseResult[];
      for (const c of results) c.notes.push(`guest boot ${r.bootMs} ms (kernel ${r.kernel})`);
      return results;
    } catch (err) {
      return [notRun(NAME, 'all protocols', 'error', (err as Error).message)];
    }
  },
};
