import { readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ConnectionInfo } from '../core/records.js';
import type { CommandRunner } from '../exec/runner.js';
import { parseLosetupList } from '../parse/losetup.js';
import { backendFailure, invalidArgument, invalidState } from '../util/errors.js';
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
      if ((await backingFileOf(name)) !== file) return; // already detached (maybe reused by someone else)
      if (!force) {
        const users = await usersOf(name);
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
      if ((await backingFileOf(name)) !== backingPath(info)) {
        throw invalidState(`${device.path} is no longer attached to ${backingPath(info)}`);
      }
      await runner.run(['losetup', '--set-capacity', device.path], { root: true, timeoutMs: 30_000 });
      const size = await this.deviceSize(device);
      if (size === null) throw backendFailure(`${device.path} disappeared while being resized`);
      return size;
    },

    async findDevices(info) {
      const file = backingPath(info);
      const { stdout } = await runner.run(['losetup', '--json', '--list', '--associated', file], {
        root: true,
        timeoutMs: 30_000,
      });
      return parseLosetupList(stdout)
        .filter((d) => d.backingFile === file)
        .map((d) => ({ path: d.name, type: 'block' as const }));
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

/** The file behind a loop device, from sysfs; null when the device is not attached. */
async function backingFileOf(name: string): Promise<string | null> {
  const text = await readFile(`/sys/class/block/${name}/loop/backing_file`, 'utf8').catch(() => null);
  return text === null ? null : text.trim().replace(/ \(deleted\)$/, '');
}

/** Mount points and holders (device-mapper, md) using a block device. */
async function usersOf(name: string): Promise<string[]> {
  const users: string[] = [];
  const devno = (await readFile(`/sys/class/block/${name}/dev`, 'utf8').catch(() => '')).trim();
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    if (devno && fields[2] === devno) users.push(`mounted at ${fields[4]}`);
  }
  for (const holder of await readdir(`/sys/class/block/${name}/holders`).catch(() => []))
    users.push(`held by ${holder}`);
  return users;
}
