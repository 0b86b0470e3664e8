import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './tmp.js';

// A throwaway QEMU guest (software emulation, Debian's kernel) for the tests that need kernel
// features this host lacks: device-mapper (LVM), loop-backed volume groups, the iSCSI and
// NVMe/TCP initiators and targets (LIO, nvmet), kernel NBD and RBD. The guest runs the HOST's
// own programs: the host's root is its root, read-only over 9p under a tmpfs overlay, so every
// package the guest needs is installed on the host (scripts/install-deps.sh) and the repository
// is at the same path inside. See test/README.md ("VM tier") and scripts/vm-assets.sh.

/** The repository's root (this file is dist/test/harness/vm.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');

/** The host as the guest reaches it (QEMU's user network): a service on the host's 127.0.0.1. */
export const HOST_FROM_GUEST = '10.0.2.2';
/** The guest's own address on QEMU's user network. */
export const GUEST_ADDRESS = '10.0.2.15';
/** The guest's host name (unless {@link VmOptions.hostname} says otherwise). */
export const GUEST_HOSTNAME = 'cairn-vm';
/** QEMU's -cpu for the guest: everything TCG emulates (SSE4.2, POPCNT, AES...) but AVX. */
export const DEFAULT_CPU_MODEL = 'max,avx=off,avx2=off,fma=off,f16c=off,avx512f=off,vaes=off,vpclmulqdq=off';
/** Where the control share (script, results) is mounted in the guest. */
export const GUEST_CONTROL_DIR = '/run/cairn-vm';

/** A host directory mounted into the guest over 9p. */
export interface VmShare {
  /** An existing host directory. */
  hostPath: string;
  /** Absolute path in the guest (made if missing). */
  guestPath: string;
  /** Mounted read-write; read-only otherwise (the default). Files are made as root. */
  writable?: boolean;
}

export interface VmOptions {
  /** A bash script run as root in the guest (not with `set -e`: add it if wanted). */
  script: string;
  /** Exported to the script. Names are shell variable names. */
  env?: Record<string, string>;
  /** Kills QEMU and rejects after this long, boot included (default 180 s). */
  timeoutMs?: number;
  /** Guest memory, MiB (default 2048). /tmp in the guest is a tmpfs, so it holds sparse files. */
  memoryMiB?: number;
  /**
   * Virtual CPUs (default 1). Under TCG, 2 vCPUs on this 2-core machine boot ~40 % slower (the
   * vCPU threads wait on each other's IPIs) and gain little: raise it only for a test about
   * parallelism.
   */
  cpus?: number;
  /**
   * QEMU's -cpu (default {@link DEFAULT_CPU_MODEL}: `max` without AVX). `max` alone makes
   * glibc, OpenSSL and V8 pick AVX2 code that TCG emulates slowly (node, sha256sum and
   * fork+exec ~30-40 % slower); QEMU's default model lacks what ceph-mon needs.
   */
  cpuModel?: string;
  /** Extra host directories to mount. */
  shares?: VmShare[];
  /** The script's working directory in the guest (default: the repository, same path as here). */
  cwd?: string;
  /** eth0 on QEMU's user network, the host at 10.0.2.2 (default true); false: loopback only. */
  network?: boolean;
  /** The guest's host name (default `cairn-vm`). */
  hostname?: string;
  /**
   * Start systemd-udevd before the script (default false: no udev, which saves seconds). With
   * it: /dev/disk/by-{id,path,uuid} links, udev-driven LVM (DM_DISABLE_UDEV unset, LVM's
   * udev_sync/udev_rules on) and multipathd that sees new paths by itself.
   */
  udev?: boolean;
}

export interface VmResult {
  /** The script's exit status (128+N when a signal N ended it). */
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The serial console: the kernel's warnings and errors, /init's `cairn-vm:` lines. */
  console: string;
  /** From starting QEMU to the guest being ready to run the script. */
  bootMs: number;
  /** From starting QEMU (after the assets are ready) to QEMU's exit. */
  totalMs: number;
  /** The guest kernel's version (`uname -r`). */
  kernel: string;
}

/** A guest that did not boot, did not finish its script, or timed out. */
export class VmError extends Error {
  constructor(
    message: string,
    /** The whole serial console. */
    readonly console: string,
  ) {
    super(message);
    this.name = 'VmError';
  }
}

/** What scripts/vm-assets.sh built. */
export interface VmAssets {
  dir: string;
  kernel: string;
  /** The kernel QEMU starts: vmlinux (PVH, fast) when it was extracted, vmlinuz otherwise. */
  kernelImage: string;
  initrd: string;
  /** The module tree shared to the guest at /lib/modules/<kernel>. */
  modules: string;
}

let assets: Promise<VmAssets> | undefined;

/**
 * Builds the kernel and initramfs once (scripts/vm-assets.sh: ~15 s, then cached under
 * `.cache/vm` or `$CAIRN_VM_CACHE`; the script's flock makes concurrent test files wait for one
 * build). Checks that QEMU is installed. Called by {@link runInVm}; memoized per process.
 */
export function vmAssets(): Promise<VmAssets> {
  assets ??= buildAssets().catch((err: unknown) => {
    assets = undefined;
    throw err;
  });
  return assets;
}

async function buildAssets(): Promise<VmAssets> {
  if (!(await commandExists('qemu-system-x86_64')))
    throw new Error('qemu-system-x86_64 is missing: run scripts/install-deps.sh (qemu-system-x86)');
  const script = join(REPO_ROOT, 'scripts', 'vm-assets.sh');
  const { code, stdout, stderr } = await collect(
    spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const dir = stdout.trim().split('\n').pop() ?? '';
  if (code !== 0 || !dir) throw new Error(`scripts/vm-assets.sh failed (exit ${code}):\n${stderr}`);
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { kernel: string };
  const vmlinux = join(dir, 'vmlinux');
  return {
    dir,
    kernel: manifest.kernel,
    kernelImage: existsSync(vmlinux) ? vmlinux : join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    modules: join(dir, 'modules'),
  };
}

function collect(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((res, rej) => {
    child.once('error', rej);
    child.once('close', (code) => res({ code, stdout, stderr }));
  });
}

async function commandExists(cmd: string): Promise<boolean> {
  const { code } = await collect(spawn('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }));
  return code === 0;
}

// ---- the safety net: no QEMU outlives the test process ----

/** Each running QEMU and its control directory. */
const live = new Map<ChildProcess, string>();
let netInstalled = false;
function installSafetyNet(): void {
  if (netInstalled) return;
  netInstalled = true;
  const killAll = () => {
    for (const [p, dir] of live) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      if (process.env.CAIRN_VM_DEBUG !== '1') rmSync(dir, { recursive: true, force: true });
    }
    live.clear();
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
  }
}

/** How many guests this process is running now (0 once every runInVm has settled). */
export function runningVms(): number {
  return live.size;
}

// ---- the guest side ----

/** Quotes a string for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const NO_UDEV_SETUP = `# No udev: libdevmapper makes the /dev/mapper nodes itself and waits for no udev cookie.
export DM_DISABLE_UDEV=1
# LVM: no udev, no dmeventd (monitoring), no lvmpolld, no devices file.
cat >/etc/lvm/lvmlocal.conf <<'EOF'
local {
}
activation {
	udev_sync = 0
	udev_rules = 0
	monitoring = 0
}
devices {
	obtain_device_list_from_udev = 0
	external_device_info_source = "none"
	use_devicesfile = 0
}
global {
	use_lvmpolld = 0
}
EOF`;

const UDEV_SETUP = `# udev: the daemon, then an "add" for the block devices that exist already.
/lib/systemd/systemd-udevd --daemon --resolve-names=never 2>/dev/console
udevadm trigger --action=add --subsystem-match=block
udevadm settle --timeout=60
# LVM: udev makes the /dev nodes; no dmeventd (monitoring), no lvmpolld, no devices file.
cat >/etc/lvm/lvmlocal.conf <<'EOF'
local {
}
activation {
	monitoring = 0
}
devices {
	use_devicesfile = 0
}
global {
	use_lvmpolld = 0
}
EOF`;

/**
 * The script the guest's /init runs in the chroot (POSIX sh, the host's /bin/sh): configures
 * the guest for udev-less operation, then runs the caller's script with bash.
 */
function bootScript(o: {
  hostname: string;
  cwd: string;
  env: Record<string, string>;
  udev: boolean;
}): string {
  const exports = Object.entries(o.env)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join('\n');
  return `# written by test/harness/vm.ts
ctl=${GUEST_CONTROL_DIR}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
# The guest's root is a chroot (PID 1 stays in the initramfs): systemd's tools (udevadm,
# systemd-udevd) refuse to act in a chroot unless told.
export SYSTEMD_IGNORE_CHROOT=1
hostname ${shellQuote(o.hostname)}
echo ${shellQuote(o.hostname)} >/etc/hostname
printf '127.0.0.1 localhost\\n127.0.1.1 %s\\n::1 localhost ip6-localhost\\n' ${shellQuote(o.hostname)} >/etc/hosts
tr -d - </proc/sys/kernel/random/uuid >/etc/machine-id
mkdir -p /root /var/lock /run/lock/lvm /run/lvm /etc/lvm
# What udev or systemd would make: /dev/fd (bash's <(...)), /dev/std{in,out,err}.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
${o.udev ? UDEV_SETUP : NO_UDEV_SETUP}
# iSCSI: a fresh initiator name per boot; iscsiadm starts iscsid itself (no systemd here).
if [ -d /etc/iscsi ] && command -v iscsi-iname >/dev/null; then
	echo "InitiatorName=$(iscsi-iname -p iqn.2004-10.com.cairn.vm)" >/etc/iscsi/initiatorname.iscsi
	sed -i 's|^iscsid.startup = .*|iscsid.startup = /usr/sbin/iscsid|' /etc/iscsi/iscsid.conf
	mkdir -p /run/lock/iscsi
fi
# NVMe: a fresh host NQN and host id per boot.
if command -v nvme >/dev/null; then
	mkdir -p /etc/nvme
	# Not \`nvme gen-hostnqn\`: it uses the DMI product UUID, all zeros under QEMU.
	hostid=$(cat /proc/sys/kernel/random/uuid)
	echo "nqn.2014-08.org.nvmexpress:uuid:$hostid" >/etc/nvme/hostnqn
	echo "$hostid" >/etc/nvme/hostid
fi
${exports}
cd ${shellQuote(o.cwd)} || { echo "cairn-vm: cannot cd to the working directory" >$ctl/stderr; uname -r >$ctl/kernel; echo 126 >$ctl/exit; exit; }
echo "cairn-vm: script started" >/dev/console
bash $ctl/script.sh </dev/null >$ctl/stdout 2>$ctl/stderr
code=$?
uname -r >$ctl/kernel
echo $code >$ctl/exit.tmp && mv $ctl/exit.tmp $ctl/exit
sync
`;
}

const CONSOLE_LIMIT = 512 * 1024;
const TAIL_LINES = 60;

/** The last lines of a text, for error messages. */
export function tail(text: string, lines = TAIL_LINES): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

/**
 * Boots a throwaway guest, runs `opts.script` in it as root with bash, and powers it off.
 *
 * The guest: Debian's kernel under TCG (`-cpu max`), the host's root read-only over 9p with a
 * tmpfs overlay on top (writes are thrown away), fresh tmpfs on /tmp, /run and /dev/shm,
 * configfs on /sys/kernel/config, devtmpfs on /dev (no udev: no /dev/disk/by-*), the storage
 * modules loaded (others: `modprobe`), LVM set up for no udev, a fresh iSCSI initiator name and
 * NVMe host NQN, and the repository as the working directory. Ports inside are the guest's own.
 *
 * Resolves with the script's exit code, stdout and stderr (carried back over a 9p share of a
 * host temp dir) even when the script fails; rejects with a {@link VmError} holding the console
 * when the guest does not boot, dies, or times out. QEMU is killed on timeout and when the test
 * process exits. Any number may run at once.
 */
export async function runInVm(opts: VmOptions): Promise<VmResult> {
  const a = await vmAssets();
  installSafetyNet();
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const env = opts.env ?? {};
  for (const k of Object.keys(env))
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`runInVm: bad environment variable name ${k}`);
  const shares = [...(opts.shares ?? [])];
  // The guest mounts fresh tmpfs on these: a repository below one (a CI clone in /tmp) would be
  // hidden, so it comes in as a share of its own, at the same path, read-only.
  const hidden = ['/tmp', '/run', '/dev/shm'];
  if (hidden.some((h) => REPO_ROOT.startsWith(`${h}/`)) && !shares.some((s) => s.guestPath === REPO_ROOT))
    shares.push({ hostPath: REPO_ROOT, guestPath: REPO_ROOT });
  for (const s of shares) {
    if (!s.guestPath.startsWith('/') || /\s/.test(s.guestPath))
      throw new Error(`runInVm: a share's guest path must be absolute, without blanks: ${s.guestPath}`);
    if (!existsSync(s.hostPath)) throw new Error(`runInVm: no host directory ${s.hostPath}`);
  }
  const debug = process.env.CAIRN_VM_DEBUG === '1';
  const ctl = await tempDir('cairn-vm-');
  try {
    await writeFile(join(ctl.path, 'script.sh'), opts.script);
    await writeFile(
      join(ctl.path, 'boot.sh'),
      bootScript({
        hostname: opts.hostname ?? GUEST_HOSTNAME,
        cwd: opts.cwd ?? REPO_ROOT,
        env,
        udev: opts.udev ?? false,
      }),
    );
    await writeFile(
      join(ctl.path, 'shares'),
      shares.map((s, i) => `share${i} ${s.guestPath} ${s.writable ? 'rw' : 'ro'}\n`).join(''),
    );
    const virtfs = (path: string, tag: string, readonly: boolean) => [
      '-virtfs',
      `local,path=${path},mount_tag=${tag},security_model=none,multidevs=remap${readonly ? ',readonly=on' : ''}`,
    ];
    for (const p of [ctl.path, ...shares.map((s) => s.hostPath)])
      if (p.includes(',')) throw new Error(`runInVm: QEMU cannot share a path with a comma: ${p}`);
    const args = [
      ...['-accel', 'tcg', '-cpu', opts.cpuModel ?? DEFAULT_CPU_MODEL],
      ...['-m', String(opts.memoryMiB ?? 2048), '-smp', String(opts.cpus ?? 1)],
      ...['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'],
      ...['-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con'],
      ...['-kernel', a.kernelImage, '-initrd', a.initrd],
      '-append',
      'console=ttyS0 panic=-1 quiet random.trust_cpu=on 8250.nr_uarts=1',
      ...(opts.network === false
        ? []
        : ['-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0,romfile=']),
      ...['-device', 'virtio-rng-pci'],
      ...virtfs('/', 'hostroot', true),
      ...virtfs(ctl.path, 'cairnctl', false),
      ...virtfs(a.modules, 'cairnmods', true),
      ...shares.flatMap((s, i) => virtfs(resolve(s.hostPath), `share${i}`, !s.writable)),
    ];
    // setpriv --pdeathsig: QEMU dies with this process even when it is SIGKILLed.
    const argv = (await commandExists('setpriv'))
      ? ['setpriv', '--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...args]
      : ['qemu-system-x86_64', ...args];
    const started = Date.now();
    const qemu = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    live.set(qemu, ctl.path);
    let consoleText = '';
    let bootMs = -1;
    const onData = (d: string) => {
      if (debug) process.stderr.write(d);
      consoleText += d;
      if (consoleText.length > CONSOLE_LIMIT) consoleText = consoleText.slice(-CONSOLE_LIMIT);
      if (bootMs < 0 && consoleText.includes('cairn-vm: script started')) bootMs = Date.now() - started;
    };
    qemu.stdout.setEncoding('utf8').on('data', onData);
    qemu.stderr.setEncoding('utf8').on('data', onData);
    const outcome = await new Promise<{ code: number | null; signal: string | null; timedOut: boolean }>(
      (res) => {
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          qemu.kill('SIGKILL');
        }, timeoutMs);
        qemu.once('error', (err) => {
          consoleText += `\n[spawn error: ${err.message}]`;
        });
        qemu.once('close', (code, signal) => {
          clearTimeout(timer);
          live.delete(qemu);
          res({ code, signal, timedOut });
        });
      },
    );
    const totalMs = Date.now() - started;
    const read = (name: string) => readFile(join(ctl.path, name), 'utf8').catch(() => undefined);
    const [exit, stdout, stderr, kernel] = await Promise.all([
      read('exit'),
      read('stdout'),
      read('stderr'),
      read('kernel'),
    ]);
    const partial = () =>
      `\n--- script stdout (tail) ---\n${tail(stdout ?? '', 20)}\n--- script stderr (tail) ---\n${tail(stderr ?? '', 20)}` +
      `\n--- console (last ${TAIL_LINES} lines) ---\n${tail(consoleText)}`;
    if (outcome.timedOut)
      throw new VmError(
        `VM timed out after ${timeoutMs} ms (${bootMs < 0 ? 'it never finished booting' : `booted in ${bootMs} ms`}); QEMU was killed${partial()}`,
        consoleText,
      );
    if (exit === undefined || !/^\d+\s*$/.test(exit)) {
      const what =
        bootMs < 0 ? 'the guest did not boot' : 'the guest stopped before its script reported an exit code';
      throw new VmError(
        `${what} (QEMU exited with ${outcome.signal ?? outcome.code} after ${totalMs} ms)${partial()}`,
        consoleText,
      );
    }
    return {
      exitCode: Number(exit),
      stdout: stdout ?? '',
      stderr: stderr ?? '',
      console: consoleText,
      bootMs,
      totalMs,
      kernel: (kernel ?? '').trim(),
    };
  } finally {
    if (debug) process.stderr.write(`[vm] control directory kept: ${ctl.path}\n`);
    else await ctl.cleanup();
  }
}

export interface NodeTestsInVmOptions extends Omit<VmOptions, 'script'> {
  /** node:test reporter (default `tap`). */
  reporter?: string;
  /** Extra arguments for node before the files (e.g. `--test-name-pattern=x`). */
  nodeArgs?: string[];
}

/**
 * Runs compiled test files with `node --test` inside a guest (as root, in the repository) and
 * returns the reporter's output (`output`, the same as `stdout`) and node's exit code. Files are
 * paths relative to the repository or absolute: e.g. `dist/test/vm/guest/lvm.guest.js`. Name
 * such files `*.guest.ts`, not `*.test.ts`, so scripts/run-tests.mjs does not run them on the
 * host.
 */
export async function runNodeTestsInVm(
  files: string[],
  opts: NodeTestsInVmOptions = {},
): Promise<VmResult & { output: string }> {
  if (files.length === 0) throw new Error('runNodeTestsInVm: no files');
  const { reporter = 'tap', nodeArgs = [], ...vm } = opts;
  const argv = [
    process.execPath,
    '--test',
    `--test-reporter=${reporter}`,
    '--test-concurrency=1',
    ...nodeArgs,
    ...files,
  ];
  const r = await runInVm({ ...vm, script: `exec ${argv.map(shellQuote).join(' ')}\n` });
  return { ...r, output: r.stdout };
}
