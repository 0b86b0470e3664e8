import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type TempDir, tempDir } from '../harness/tmp.js';
import {
  GUEST_HOSTNAME,
  REPO_ROOT,
  runInVm,
  runNodeTestsInVm,
  runningVms,
  VmError,
  type VmResult,
} from '../harness/vm.js';

// The VM tier: a QEMU guest (TCG, Debian's kernel) for what this host's kernel cannot do.
// Few boots on purpose (each costs ~5 s of both cores' time): one runs every kernel check of
// test/vm/smoke-checks.sh, the others prove what the harness promises.

const MiB = 1024 * 1024;
const HOOK_TIMEOUT = 10 * 60 * 1000; // the first call may build the assets (~15 s, once)

interface CheckLine {
  name: string;
  rc: number;
  ms: number;
}

describe('the guest kernel does what the drivers and connectors need (one boot)', () => {
  let xchg: TempDir;
  let pattern: Buffer;
  let run: VmResult;
  const results = new Map<string, CheckLine>();

  before(
    async () => {
      xchg = await tempDir('cairn-vm-xchg-');
      pattern = randomBytes(MiB);
      await writeFile(join(xchg.path, 'pattern.bin'), pattern);
      run = await runInVm({
        script: 'exec bash test/vm/smoke-checks.sh\n',
        env: { XCHG: '/mnt/xchg' },
        shares: [{ hostPath: xchg.path, guestPath: '/mnt/xchg', writable: true }],
        timeoutMs: 5 * 60 * 1000,
      });
      const lines = await readFile(join(xchg.path, 'results.jsonl'), 'utf8').catch(() => '');
      for (const line of lines.split('\n').filter(Boolean)) {
        const r = JSON.parse(line) as CheckLine;
        results.set(r.name, r);
      }
    },
    { timeout: HOOK_TIMEOUT },
  );
  after(() => xchg?.cleanup());

  test('the guest booted Debian’s kernel and ran every check', (t) => {
    assert.equal(run.exitCode, 0, `stderr:\n${run.stderr}\nconsole:\n${run.console}`);
    assert.match(run.kernel, /^\d+\.\d+\.\d+-\d+-amd64$/);
    assert.ok(run.bootMs > 0 && run.bootMs < run.totalMs, `bootMs ${run.bootMs}, totalMs ${run.totalMs}`);
    const timings = [...results.values()].map((r) => `${r.name} ${r.ms} ms`).join(', ');
    t.diagnostic(`kernel ${run.kernel}: boot ${run.bootMs} ms, total ${run.totalMs} ms; ${timings}`);
  });

  /** A check ran, passed, and the pattern written to its device came back byte for byte. */
  async function checkDevice(name: string): Promise<{ device: string; size: number; [k: string]: unknown }> {
    const r = results.get(name);
    const log = await readFile(join(xchg.path, `${name}.log`), 'utf8').catch(() => '(no log)');
    assert.ok(r, `check ${name} did not run; stdout: ${run.stdout}; console: ${run.console}`);
    assert.equal(r.rc, 0, `check ${name} failed:\n${log}`);
    const facts = JSON.parse(await readFile(join(xchg.path, `${name}.json`), 'utf8')) as {
      device: string;
      size: number;
    };
    const back = await readFile(join(xchg.path, `${name}.out`));
    assert.equal(back.length, pattern.length, `${name}: read back ${back.length} bytes`);
    assert.ok(back.equals(pattern), `${name}: the data read back from ${facts.device} differs`);
    return facts;
  }

  test('device-mapper: a thin LV in a thin pool of a loop-backed VG', async () => {
    const f = await checkDevice('lvm');
    assert.equal(f.device, '/dev/cairnvm/thin1');
    assert.equal(f.size, 256 * MiB);
    assert.equal(f.segtype, 'thin');
    assert.ok(Number(f.poolDataPercent) > 0, 'the pattern allocated pool chunks');
  });

  test('NVMe/TCP: nvme connect to an nvmet target on 127.0.0.1 in the guest', async () => {
    const f = await checkDevice('nvme');
    assert.match(f.device, /^\/dev\/nvme\d+n\d+$/);
    assert.equal(f.size, 64 * MiB);
  });

  test('iSCSI: open-iscsi logs in to tgt on 127.0.0.1:13260', async () => {
    const f = await checkDevice('iscsi_tgt');
    assert.match(f.device, /^\/dev\/sd[a-z]+$/);
    assert.equal(f.size, 64 * MiB);
    assert.match(String(f.initiator), /^iqn\.2004-10\.com\.cairn\.vm:[0-9a-f]+$/);
  });

  test('iSCSI: open-iscsi logs in to LIO (configfs) on 127.0.0.1:13261', async () => {
    const f = await checkDevice('iscsi_lio');
    assert.match(f.device, /^\/dev\/sd[a-z]+$/);
    assert.equal(f.size, 64 * MiB);
  });

  test('NBD: nbd-client attaches qemu-nbd on 127.0.0.1:10810 as /dev/nbd0', async () => {
    const f = await checkDevice('nbd');
    assert.equal(f.device, '/dev/nbd0');
    assert.equal(f.size, 64 * MiB);
  });
});

describe('the VM harness', () => {
  // Started first and awaited last: the guest sleeps (little CPU) while the others run.
  let timedOut: Promise<unknown>;
  before(() => {
    timedOut = runInVm({
      script: 'echo "cairn-test: sleeping forever" >/dev/console\nsleep 600\n',
      timeoutMs: 40_000,
    }).then(
      () => new Error('the script finished'),
      (err: unknown) => err,
    );
  });

  test('a failing script: its exit code, stdout, stderr, environment and directory come back', async () => {
    const r = await runInVm({
      script: 'echo "out $(pwd) $(hostname)"\necho "err: $GREETING" >&2\nexit 7\n',
      env: { GREETING: "it's a b c" },
    });
    assert.equal(r.exitCode, 7);
    assert.equal(r.stdout, `out ${REPO_ROOT} ${GUEST_HOSTNAME}\n`);
    assert.equal(r.stderr, "err: it's a b c\n");
    assert.match(r.console, /cairn-vm: ready/);
  });

  test('runNodeTestsInVm: node:test files run in the guest; TAP and exit code come back', {
    timeout: HOOK_TIMEOUT,
  }, async (t) => {
    const r = await runNodeTestsInVm(['dist/test/vm/guest/sample.guest.js'], {
      env: { CAIRN_VM_SAMPLE_FAIL: '1' },
    });
    t.diagnostic(`node tests in the guest: boot ${r.bootMs} ms, total ${r.totalMs} ms`);
    assert.equal(r.exitCode, 1, r.output + r.stderr);
    assert.match(r.output, /^ok \d+ - runs as root in the guest/m);
    assert.match(r.output, /^ok \d+ - the library attaches a volume as a loop device in the guest/m);
    assert.match(r.output, /^not ok \d+ - fails when asked to/m);
    assert.match(r.output, /failing on request/);
  });

  test('a timeout kills QEMU and reports the console tail', { timeout: HOOK_TIMEOUT }, async () => {
    const err = await timedOut;
    assert.ok(err instanceof VmError, String(err));
    assert.match(err.message, /^VM timed out after 40000 ms/);
    assert.match(err.message, /--- console \(last \d+ lines\) ---/);
    assert.match(err.message, /cairn-vm: init started/);
    assert.match(err.console, /cairn-test: sleeping forever/);
    assert.equal(runningVms(), 0);
  });
});
