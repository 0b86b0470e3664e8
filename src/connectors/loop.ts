/**
 * Loop-device facts shared by the connectors that attach a file as a loop device (`local`, and
 * `rbd` through rbd-fuse): read from sysfs and /proc where possible, `losetup` otherwise.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { CommandRunner } from '../exec/runner.js';
import { parseLosetupList } from '../parse/losetup.js';
import type { AttachedDevice } from './spi.js';

/** The file behind loop device `name` (e.g. `loop3`); null when the device is not attached. */
export async function loopBackingFile(name: string): Promise<string | null> {
  const text = await readFile(`/sys/class/block/${name}/loop/backing_file`, 'utf8').catch(() => null);
  return text === null ? null : text.trim().replace(/ \(deleted\)$/, '');
}

/** Mount points and holders (device-mapper, md) using block device `name`. */
export async function blockDeviceUsers(name: string): Promise<string[]> {
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

/** The loop devices attached from `file`, as `losetup` lists them. */
export async function loopDevicesOf(runner: CommandRunner, file: string): Promise<AttachedDevice[]> {
  const { stdout } = await runner.run(['losetup', '--json', '--list', '--associated', file], {
    root: true,
    timeoutMs: 30_000,
  });
  return parseLosetupList(stdout)
    .filter((d) => d.backingFile === file)
    .map((d) => ({ path: d.name, type: 'block' as const }));
}
