import { readFile, readlink, realpath, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ConnectionInfo } from '../core/records.js';
import type { CommandRunner } from '../exec/runner.js';
import { backendFailure, invalidArgument, invalidState } from '../util/errors.js';
import { blockDeviceUsers, loopBackingFile, loopDevicesOf } from './loop.js';
import type { AttachedDevice, Connector } from './spi.js';

/**
 * The `local` protocol: the volume is a file on this host, attached as a loop device, or a block
 * device on this host (an LVM volume), handed out as itself.
 * The loop device is checked against its backing file before every detach, so a device number
 * that was freed and reused by someone else is never detached by mistake.
 */
export function createLocalConnector(runner: CommandRunner): Connector {
  return {
    protocol: 'local',

    async attach(info, { readOnly }) {
      const block = await blockDevice(backingPath(info));
      // A block device needs no loop device; one is made only to make a read-only attach
      // read-only without changing the device itself, which others may have open.
      if (block && !readOnly) return { path: block.path, type: 'block' };
      const file = block?.canonical ?? backingPath(info);
      const argv = ['losetup', '--find', '--show', '--nooverlap'];
      if (readOnly) argv.push('--read-only');
      const { stdout } = await runner.run([...argv, '--', file], { root: true, timeoutMs: 30_000 });
      const path = stdout.trim();
      if (!/^\/dev\/loop\d+$/.test(path))
        throw backendFailure(`losetup printed no loop device for ${file}: ${JSON.stringify(stdout)}`);
      return { path, type: 'block' };
    },

    async detach(info, device, { force }) {
      const block = await blockDevice(backingPath(info));
      if (block?.path === device.path) {
        // The volume's own device: attaching set nothing up, so there is nothing to undo; it is
        // still refused while mounted or held, as a loop device would be.
        if (!force) await refuseUsed(block.name, device.path);
        return;
      }
      if (!isLoopPath(device.path)) return; // the volume's device is gone, or is another one now
      const file = block?.canonical ?? backingPath(info);
      const name = loopName(device.path);
      if ((await loopBackingFile(name)) !== file) return; // already detached (maybe reused by someone else)
      if (!force) await refuseUsed(name, device.path);
      await runner.run(['losetup', '--detach', device.path], { root: true, timeoutMs: 30_000 });
    },

    async extend(info, device) {
      const block = await blockDevice(backingPath(info));
      // The volume's own device shows its new size by itself.
      if (block?.path === device.path) return sizeOf(device);
      // Not a loop device: the volume's device came back as another one (an LVM origin with
      // snapshots is deactivated to grow), or is gone.
      if (!isLoopPath(device.path))
        throw invalidState(`${device.path} is no longer the device of ${backingPath(info)}; attach it again`);
      const name = loopName(device.path);
      const file = block?.canonical ?? backingPath(info);
      if ((await loopBackingFile(name)) !== file) {
        throw invalidState(`${device.path} is no longer attached to ${file}`);
      }
      await runner.run(['losetup', '--set-capacity', device.path], { root: true, timeoutMs: 30_000 });
      return sizeOf(device);
    },

    async findDevices(info) {
      const block = await blockDevice(backingPath(info));
      const loops = await loopDevicesOf(runner, block?.canonical ?? backingPath(info));
      // A read-write attach of a block device is the device itself.
      return block && info.data.readOnly !== true ? [...loops, { path: block.path, type: 'block' }] : loops;
    },

    deviceSize,
  };
}

async function deviceSize(device: AttachedDevice): Promise<number | null> {
  const sectors = await readFile(`/sys/class/block/${deviceName(device.path)}/size`, 'utf8').catch(
    () => null,
  );
  return sectors === null ? null : Number(sectors.trim()) * 512;
}

async function sizeOf(device: AttachedDevice): Promise<number> {
  const size = await deviceSize(device);
  if (size === null) throw backendFailure(`${device.path} disappeared while being resized`);
  return size;
}

async function refuseUsed(name: string, path: string): Promise<void> {
  const users = await blockDeviceUsers(name);
  if (users.length > 0) {
    throw invalidState(`${path} is in use (${users.join(', ')}); unmount it first, or detach with force`, {
      details: { device: path },
    });
  }
}

/**
 * The block device at `path` (a link such as /dev/vg/lv is followed): its kernel name (`dm-3`),
 * `/dev/<name>` (the path whose basename sysfs knows, as a loop device's), and the resolved path
 * (`/dev/mapper/vg-lv`: what a loop device over it records as its backing file). Null when
 * `path` is not a block device.
 */
async function blockDevice(path: string): Promise<{ name: string; path: string; canonical: string } | null> {
  const s = await stat(path, { bigint: true }).catch(() => null);
  if (!s?.isBlockDevice()) return null;
  // Linux's dev_t encoding (glibc's major()/minor()).
  const major = ((s.rdev >> 8n) & 0xfffn) | ((s.rdev >> 32n) & ~0xfffn);
  const minor = (s.rdev & 0xffn) | ((s.rdev >> 12n) & ~0xffn);
  const name = basename(await readlink(`/sys/dev/block/${major}:${minor}`));
  const dev = `/dev/${name}`;
  const same = await stat(dev, { bigint: true }).then(
    (d) => d.isBlockDevice() && d.rdev === s.rdev,
    () => false,
  );
  const canonical = await realpath(path);
  return { name, path: same ? dev : canonical, canonical };
}

const isLoopPath = (path: string) => /^loop\d+$/.test(basename(path));

function deviceName(path: string): string {
  const name = basename(path);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
    throw invalidArgument(`not a device: ${JSON.stringify(path)}`);
  return name;
}

function backingPath(info: ConnectionInfo): string {
  const path = info.data.path;
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw invalidArgument(
      `local connection info: data.path must be an absolute file path (got ${JSON.stringify(path)})`,
    );
  }
  return path;
}

function loopName(path: string): string {
  const name = basename(path);
  if (!/^loop\d+$/.test(name)) throw invalidArgument(`not a loop device: ${JSON.stringify(path)}`);
  return name;
}
