import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ConnectionInfo } from '../core/records.js';
import type { CommandRunner } from '../exec/runner.js';
import { backendFailure, invalidArgument, invalidState } from '../util/errors.js';
import { blockDeviceUsers, loopBackingFile, loopDevicesOf } from './loop.js';
import type { Connector } from './spi.js';

/**
 * The `local` protocol: the volume is a file on this host, attached as a loop device.
 * The loop device is checked against its backing file before every detach, so a device number
 * that was freed and reused by someone else is never detached by mistake.
 */
export function createLocalConnector(runner: CommandRunner): Connector {
  return {
    protocol: 'local',

    async attach(info, { readOnly }) {
      const file = backingPath(info);
      const argv = ['losetup', '--find', '--show', '--nooverlap'];
      if (readOnly) argv.push('--read-only');
      const { stdout } = await runner.run([...argv, '--', file], { root: true, timeoutMs: 30_000 });
      const path = stdout.trim();
      if (!/^\/dev\/loop\d+$/.test(path))
        throw backendFailure(`losetup printed no loop device for ${file}: ${JSON.stringify(stdout)}`);
      return { path, type: 'block' };
    },

    async detach(info, device, { force }) {
      const file = backingPath(info);
      const name = loopName(device.path);
      if ((await loopBackingFile(name)) !== file) return; // already detached (maybe reused by someone else)
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
    },

    async extend(info, device) {
      const name = loopName(device.path);
      if ((await loopBackingFile(name)) !== backingPath(info)) {
        throw invalidState(`${device.path} is no longer attached to ${backingPath(info)}`);
      }
      await runner.run(['losetup', '--set-capacity', device.path], { root: true, timeoutMs: 30_000 });
      const size = await this.deviceSize(device);
      if (size === null) throw backendFailure(`${device.path} disappeared while being resized`);
      return size;
    },

    async findDevices(info) {
      return loopDevicesOf(runner, backingPath(info));
    },

    async deviceSize(device) {
      const sectors = await readFile(`/sys/class/block/${loopName(device.path)}/size`, 'utf8').catch(
        () => null,
      );
      return sectors === null ? null : Number(sectors.trim()) * 512;
    },
  };
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
