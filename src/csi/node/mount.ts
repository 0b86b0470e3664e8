import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandRunner } from '../../exec/runner.js';
import { backendFailure } from '../../util/errors.js';
import { mountAt, readMounts } from './mountinfo.js';

const TIMEOUT_MS = 120_000;

/**
 * Mounts a block device. `options` become one `-o` list and are passed to the runner as secrets
 * too: the spec says mount flags may carry sensitive values, so they never reach a log.
 */
export async function mountDevice(
  runner: CommandRunner,
  device: string,
  target: string,
  fsType: string,
  options: readonly string[],
): Promise<void> {
  const argv = ['mount', '-t', fsType];
  if (options.length > 0) argv.push('-o', options.join(','));
  await runner.run([...argv, '--', device, target], {
    root: true,
    timeoutMs: TIMEOUT_MS,
    secrets: options.length > 0 ? [options.join(',')] : [],
  });
}

/**
 * Bind-mounts `source` (a directory, or a device node onto a file) at `target`; read-only makes it
 * a read-only bind mount (`remount,bind,ro`: the ro flag of a bind mount can only be set by a
 * remount). When that remount fails the bind mount is undone, so a read-only request never
 * leaves a writable mount behind.
 */
export async function bindMount(
  runner: CommandRunner,
  source: string,
  target: string,
  readOnly: boolean,
): Promise<void> {
  await runner.run(['mount', '--bind', '--', source, target], { root: true, timeoutMs: TIMEOUT_MS });
  if (!readOnly) return;
  try {
    await runner.run(['mount', '-o', 'remount,bind,ro', '--', target], { root: true, timeoutMs: TIMEOUT_MS });
  } catch (err) {
    await unmount(runner, target).catch(() => {});
    throw err;
  }
}

/**
 * Unmounts whatever is mounted at `path` until nothing is (a path can hold stacked mounts);
 * nothing mounted is fine. A mount that stays busy fails with the umount error.
 */
export async function unmount(runner: CommandRunner, path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    if (mountAt(await readMounts(), path) === null) return;
    try {
      await runner.run(['umount', '--', path], { root: true, timeoutMs: TIMEOUT_MS });
    } catch (err) {
      // "not mounted" after a concurrent unmount is success; a busy mount gets a few retries
      // (a file closed a moment ago can still pin it).
      if (mountAt(await readMounts(), path) === null) return;
      if (attempt >= 5) throw err;
      await sleep(100 * (attempt + 1));
      continue;
    }
    if (attempt >= 16) throw backendFailure(`${path} is still mounted after ${attempt + 1} unmounts`);
  }
}
