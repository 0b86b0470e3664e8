import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rmdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionInfo } from '../core/records.js';
import { type CephAccess, cephArgs } from '../drivers/rbd/cli.js';
import type { CommandRunner } from '../exec/runner.js';
import { parseRbdInfo } from '../parse/rbd.js';
import { backendFailure, invalidArgument, invalidState, notFound } from '../util/errors.js';
import { blockDeviceUsers, loopBackingFile, loopDevicesOf } from './loop.js';
import type { Connector } from './spi.js';

/** Where Cairn keeps its rbd-fuse mount points: `$CAIRN_RUN_DIR/rbd-fuse`, default `/run/cairn/rbd-fuse`. */
export function rbdFuseDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.CAIRN_RUN_DIR || '/run/cairn', 'rbd-fuse');
}

interface RbdTarget {
  pool: string;
  namespace: string | undefined;
  image: string;
  access: CephAccess;
  readOnly: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function target(info: ConnectionInfo): RbdTarget {
  const d = info.data;
  const field = (k: string, ok: (v: unknown) => boolean) => {
    if (!ok(d[k]))
      throw invalidArgument(`rbd connection info: data.${k} is invalid (got ${JSON.stringify(d[k])})`);
    return d[k];
  };
  const isName = (v: unknown) => typeof v === 'string' && NAME.test(v);
  const isPath = (v: unknown) => v === undefined || (typeof v === 'string' && v.startsWith('/'));
  const monitors = field(
    'monitors',
    (v) => v === undefined || (Array.isArray(v) && v.every((m) => typeof m === 'string')),
  ) as string[] | undefined;
  const conf = field('conf', isPath) as string | undefined;
  return {
    pool: field('pool', isName) as string,
    namespace: field('namespace', (v) => v === undefined || isName(v)) as string | undefined,
    image: field('image', isName) as string,
    readOnly: d.readOnly === true,
    access: {
      conf,
      // With a conf file the monitors come from it; without, from the info.
      monitors: conf ? undefined : monitors,
      user: (field('user', (v) => v === undefined || isName(v)) as string | undefined) ?? 'admin',
      keyring: field('keyring', isPath) as string | undefined,
      timeoutMs: 30_000,
    },
  };
}

/** The private mount point of one image: a hash of everything that names it. */
function mountPointOf(t: RbdTarget): string {
  const id = JSON.stringify([
    t.access.conf ?? '',
    t.access.monitors ?? [],
    t.access.user,
    t.pool,
    t.namespace ?? '',
    t.image,
  ]);
  return join(rbdFuseDir(), createHash('sha256').update(id).digest('hex').slice(0, 24));
}

async function isMounted(path: string): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[4] === path);
}

/** The pid of the rbd-fuse daemon serving `mnt`, found in /proc. */
async function fuseDaemonOf(mnt: string): Promise<number | undefined> {
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[0]?.endsWith('rbd-fuse') && argv.includes(mnt)) return Number(entry);
  }
  return undefined;
}

/** Waits until `pid` has exited (or is a zombie nobody reaps), for at most `ms`. */
async function waitForExit(pid: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
    if (stat === null || /^\d+ \(.*\) Z/.test(stat)) return;
    await sleep(20);
  }
}

/**
 * The `rbd` protocol on this host. It first tries the kernel client (`rbd device map -o noudev`);
 * where the kernel has no RBD module it falls back to userspace: `rbd-fuse` mounts the one image
 * on a private mount point under `$CAIRN_RUN_DIR/rbd-fuse/` and `losetup` turns the image file
 * into a real `/dev/loopN`. Detach removes the loop device, then unmounts rbd-fuse.
 */
export function createRbdConnector(runner: CommandRunner): Connector {
  /** Null until a kernel map was tried; false once it failed (not tried again in this process). */
  let kernelWorks: boolean | null = null;

  async function unmount(mnt: string): Promise<void> {
    const daemon = await fuseDaemonOf(mnt);
    for (let attempt = 0; (await isMounted(mnt)) && attempt < 50; attempt++) {
      try {
        await runner.run(['umount', mnt], { root: true, timeoutMs: 30_000 });
      } catch (err) {
        if (attempt >= 49) throw err;
        await sleep(100); // a loop device released a moment ago can still hold the file
      }
    }
    await rmdir(mnt).catch(() => {});
    // rbd-fuse closes the image (and drops its watch) only as it exits, after the unmount: a
    // delete right after the detach would find the image busy.
    if (daemon !== undefined) await waitForExit(daemon, 10_000);
  }

  async function mountImage(t: RbdTarget): Promise<string> {
    const mnt = mountPointOf(t);
    const file = join(mnt, t.image);
    if (!(await isMounted(mnt))) {
      await mkdir(mnt, { recursive: true, mode: 0o700 });
      const argv = ['rbd-fuse', mnt, ...cephArgs(t.access), `--poolname=${t.pool}`, `--image=${t.image}`];
      if (t.namespace) argv.push(`--namespace=${t.namespace}`);
      argv.push('-o', 'attr_timeout=0,entry_timeout=0,negative_timeout=0');
      await runner.run(argv, { root: true, timeoutMs: t.access.timeoutMs });
    }
    // rbd-fuse mounts even when the pool or image is missing: the file tells.
    const ok = await stat(file).then(
      () => true,
      () => false,
    );
    if (!ok) {
      await unmount(mnt).catch(() => {});
      throw notFound(`rbd-fuse shows no image ${t.pool}/${t.namespace ? `${t.namespace}/` : ''}${t.image}`);
    }
    return file;
  }

  async function tryKernelMap(t: RbdTarget): Promise<string | null> {
    if (kernelWorks === false) return null;
    const argv = ['rbd', 'device', 'map', '-o', 'noudev', ...cephArgs(t.access), '--pool', t.pool];
    if (t.namespace) argv.push('--namespace', t.namespace);
    if (t.readOnly) argv.push('--read-only');
    argv.push('--image', t.image);
    try {
      const { stdout } = await runner.run(argv, { root: true, timeoutMs: t.access.timeoutMs });
      kernelWorks = true;
      return stdout.trim();
    } catch {
      kernelWorks = false; // no rbd kernel module here: userspace from now on
      return null;
    }
  }

  const loopFiles = (file: string) => loopDevicesOf(runner, file);

  return {
    protocol: 'rbd',

    async attach(info, { readOnly }) {
      const t = target(info);
      t.readOnly = readOnly || t.readOnly;
      const kdev = await tryKernelMap(t);
      if (kdev && /^\/dev\/rbd\d+$/.test(kdev)) return { path: kdev, type: 'block' };
      const file = await mountImage(t);
      const argv = ['losetup', '--find', '--show', '--nooverlap'];
      if (t.readOnly) argv.push('--read-only');
      try {
        const { stdout } = await runner.run([...argv, '--', file], { root: true, timeoutMs: 30_000 });
        const path = stdout.trim();
        if (!/^\/dev\/loop\d+$/.test(path))
          throw backendFailure(`losetup printed no loop device for ${file}`);
        return { path, type: 'block' };
      } catch (err) {
        if ((await loopFiles(file).catch(() => [])).length === 0)
          await unmount(mountPointOf(t)).catch(() => {});
        throw err;
      }
    },

    async detach(info, device, { force }) {
      const t = target(info);
      const name = basename(device.path);
      if (/^rbd\d+$/.test(name)) {
        await runner.run(['rbd', 'device', 'unmap', ...(force ? ['-o', 'force'] : []), device.path], {
          root: true,
          timeoutMs: t.access.timeoutMs,
        });
        return;
      }
      if (!/^loop\d+$/.test(name))
        throw invalidArgument(`not a loop or rbd device: ${JSON.stringify(device.path)}`);
      const mnt = mountPointOf(t);
      const file = join(mnt, t.image);
      if ((await loopBackingFile(name)) === file) {
        if (!force) {
          const users = await blockDeviceUsers(name);
          if (users.length > 0) {
            throw invalidState(
              `${device.path} is in use (${users.join(', ')}); unmount it first, or detach with force`,
              {
                details: { device: device.path },
              },
            );
          }
        }
        await runner.run(['losetup', '--detach', device.path], { root: true, timeoutMs: 30_000 });
      }
      // The mount serves this one image: once no loop device uses it, it goes. The kernel
      // releases a detached loop device asynchronously, so give it a moment to let go.
      let users = await loopFiles(file);
      for (let i = 0; users.length > 0 && i < 50; i++) {
        await sleep(100);
        users = await loopFiles(file);
      }
      if ((await isMounted(mnt)) && users.length === 0) await unmount(mnt);
      else if (!(await isMounted(mnt))) await rmdir(mnt).catch(() => {});
    },

    async extend(info, device) {
      const t = target(info);
      const name = basename(device.path);
      if (/^loop\d+$/.test(name)) {
        const file = join(mountPointOf(t), t.image);
        if ((await loopBackingFile(name)) !== file)
          throw invalidState(`${device.path} is no longer attached to ${file}`);
        const args = [...cephArgs(t.access), 'info', '--pool', t.pool];
        if (t.namespace) args.push('--namespace', t.namespace);
        const { stdout } = await runner.run(['rbd', ...args, '--image', t.image, '--format', 'json'], {
          timeoutMs: t.access.timeoutMs,
        });
        const want = parseRbdInfo(stdout).size;
        // rbd-fuse answers getattr from the open image (attr_timeout=0): wait until it shows the size.
        for (let i = 0; (await stat(file)).size !== want && i < 100; i++) await sleep(50);
        await runner.run(['losetup', '--set-capacity', device.path], { root: true, timeoutMs: 30_000 });
      }
      const size = await this.deviceSize(device);
      if (size === null) throw backendFailure(`${device.path} disappeared while being resized`);
      return size;
    },

    async findDevices(info) {
      const t = target(info);
      const mnt = mountPointOf(t);
      if (!(await isMounted(mnt))) return [];
      return loopFiles(join(mnt, t.image));
    },

    async deviceSize(device) {
      const sectors = await readFile(`/sys/class/block/${basename(device.path)}/size`, 'utf8').catch(
        () => null,
      );
      return sectors === null ? null : Number(sectors.trim()) * 512;
    },
  };
}
