// The driver conformance suite over network exports, in the test VM (the kernel initiators,
// LIO, nvmet and device-mapper live only there): the attach/I/O/extend/concurrency groups for
// each export against the drivers that compose them. The driver-level groups (manage, invalid
// input and configuration) run on the host and in lvm.test.ts without an export.
// CAIRN_VM_EXPORTS selects the combinations (comma-separated keys of COMBOS), so that two guests
// can share the work. Named *.guest.ts: the host's test run never picks it up.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DriverTestContext, runDriverConformance } from '../../conformance/driver.js';
import { fileContext } from '../../drivers/file-context.js';
import { lvmContext } from '../../drivers/lvm-context.js';
import { run } from '../../harness/exec.js';
import { iscsiDevices, nbdDevices, nvmeDevices } from '../../harness/export-devices.js';

const TGT_CONTROL = 7;
const TGT_PORTAL = '127.0.0.1:3270';
const IQN = 'iqn.2026-11.org.cairn';
const NQN = 'nqn.2026-11.org.cairn';

/** A context with an `export` section on its backends and the matching view of local devices. */
function exported(
  base: () => Promise<DriverTestContext>,
  exportConfig: Record<string, unknown>,
  devices: DriverTestContext['localDevices'],
  openOptions: DriverTestContext['openOptions'] = {},
): () => Promise<DriverTestContext> {
  return async () => {
    const ctx = await base();
    const config = { ...ctx.config, export: exportConfig };
    return {
      ...ctx,
      config,
      freshConfig: () => ({ ...ctx.freshConfig(), export: exportConfig }),
      localDevices: devices,
      openOptions,
    };
  };
}

const fileBase = () =>
  fileContext({ name: 'file', driver: 'file', storage: { harness: 'tmp' }, options: {}, expect: {} });

const COMBOS: Record<string, { label: string; make: () => Promise<DriverTestContext> }> = {
  'lvm-lio-multipath': {
    label: 'lvm thin + iSCSI (LIO), two portals, dm-multipath',
    make: exported(
      () => lvmContext({ thin: true }),
      { protocol: 'iscsi', helper: 'lio', portals: ['127.0.0.1:3260', '127.0.0.2:3260'], iqnPrefix: IQN },
      iscsiDevices(IQN, 2),
      { multipath: true },
    ),
  },
  'lvm-nvmeof': {
    label: 'lvm thin + NVMe-oF/TCP (nvmet)',
    make: exported(
      () => lvmContext({ thin: true }),
      { protocol: 'nvmeof', portals: ['127.0.0.1:4420'], nqnPrefix: NQN },
      nvmeDevices(NQN),
    ),
  },
  'file-tgt-chap': {
    label: 'file + iSCSI (tgt) with CHAP',
    make: exported(
      fileBase,
      {
        protocol: 'iscsi',
        helper: 'tgt',
        portals: [TGT_PORTAL],
        chap: true,
        tgtControlPort: TGT_CONTROL,
        iqnPrefix: IQN,
      },
      iscsiDevices(IQN, 1),
    ),
  },
  'file-nbd': {
    label: 'file + NBD (qemu-nbd)',
    make: exported(fileBase, { protocol: 'nbd', address: '127.0.0.1', ports: [10900, 10999] }, nbdDevices()),
  },
};

const chosen = (process.env.CAIRN_VM_EXPORTS ?? Object.keys(COMBOS).join(',')).split(',');
let tgtd: ChildProcess | undefined;

before(async () => {
  // The operator's multipath configuration: no udev in the VM, so WWIDs come from sysfs.
  await mkdir('/etc/multipath', { recursive: true });
  await writeFile('/etc/multipath.conf', 'defaults {\n  user_friendly_names no\n  uid_attribute ""\n}\n');
  if (chosen.includes('file-tgt-chap')) {
    tgtd = spawn('tgtd', ['-f', '-C', String(TGT_CONTROL), '--iscsi', `portal=${TGT_PORTAL}`], {
      stdio: 'ignore',
    });
    for (let i = 0; ; i++) {
      const up = await run(['tgtadm', '-C', String(TGT_CONTROL), '--mode', 'sys', '--op', 'show']).then(
        () => true,
        () => false,
      );
      if (up) break;
      if (i > 100) throw new Error('tgtd did not start');
      await sleep(100);
    }
  }
});

after(async () => {
  await run(['iscsiadm', '-m', 'node', '--logoutall=all']).catch(() => {});
  await run(['multipath', '-F']).catch(() => {});
  tgtd?.kill('SIGKILL');
  // Say what was left: a leak shows here even when every case passed.
  const sessions = await readFile('/proc/partitions', 'utf8').catch(() => '');
  if (/\bsd[a-z]+\b|\bnvme\d+n\d+\b/.test(sessions)) console.log(`# left over devices:\n${sessions}`);
});

for (const key of chosen) {
  const combo = COMBOS[key];
  if (!combo)
    throw new Error(`CAIRN_VM_EXPORTS: unknown combination "${key}" (${Object.keys(COMBOS).join(', ')})`);
  runDriverConformance(combo.label, combo.make, { groups: ['lifecycle', 'data', 'concurrency'] });
}
