import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { CommandRunner } from '../../exec/runner.js';
import { backendFailure } from '../../util/errors.js';

/*
 * A read-only bind mount does not make a device node read-only: writes to a device go to the
 * device, not through the mount. A read-only block publish of a writable volume therefore gets
 * its own read-only loop device stacked on the staged device (a "view"), and that is what is
 * bind-mounted at the target.
 */

/** Makes a read-only loop device over `device`; returns its path. */
export async function attachReadOnlyView(runner: CommandRunner, device: string): Promise<string> {
  const { stdout } = await runner.run(['losetup', '--find', '--show', '--read-only', '--', device], {
    root: true,
    timeoutMs: 30_000,
  });
  const view = stdout.trim();
  if (!/^\/dev\/loop\d+$/.test(view))
    throw backendFailure(`losetup printed no loop device for a view of ${device}: ${JSON.stringify(stdout)}`);
  return view;
}

/** True when `view` is still a loop device over `device` (a freed loop number may be reused). */
export async function isViewOf(view: string, device: string): Promise<boolean> {
  const name = basename(view);
  if (!/^loop\d+$/.test(name)) return false;
  const backing = await readFile(`/sys/class/block/${name}/loop/backing_file`, 'utf8').catch(() => null);
  return backing !== null && backing.trim() === device;
}

/** Detaches a view; nothing is done when it is gone or now backed by something else. */
export async function detachView(runner: CommandRunner, view: string, device: string): Promise<void> {
  if (!(await isViewOf(view, device))) return;
  await runner.run(['losetup', '--detach', view], { root: true, timeoutMs: 30_000 });
}

/** Makes a view show its device's new size after the device grew. */
export async function refreshView(runner: CommandRunner, view: string, device: string): Promise<void> {
  if (!(await isViewOf(view, device))) return;
  await runner.run(['losetup', '--set-capacity', view], { root: true, timeoutMs: 30_000 });
}
