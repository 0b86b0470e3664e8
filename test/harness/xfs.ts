import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './exec.js';
import { detachLoopsUnder } from './loops.js';
import { tempDir } from './tmp.js';

/** A mounted XFS file system with reflink, on a loop device over a sparse image. */
export interface XfsFs {
  /** The mount point. */
  path: string;
  /** The loop device the image is attached to. */
  device: string;
  /** Unmounts, detaches and removes everything; safe to call twice. */
  cleanup(): Promise<void>;
}

/**
 * Makes a sparse image (4 GiB by default), `mkfs.xfs -m reflink=1`, attaches it with
 * `losetup --find --show` and mounts it. Loop devices left on files inside the file system are
 * detached by `cleanup`, so a failed test can't keep it mounted.
 */
export async function createXfs(opts: { sizeBytes?: number } = {}): Promise<XfsFs> {
  const dir = await tempDir('cairn-xfs-');
  const image = join(dir.path, 'xfs.img');
  const mountPoint = join(dir.path, 'mnt');
  const undo: Array<() => Promise<unknown>> = [() => dir.cleanup()];
  // Every step runs even when one fails (a stuck mount must not leak the loop device too).
  const cleanup = async () => {
    let first: unknown;
    for (const step of undo.splice(0).reverse()) await step().catch((err) => (first ??= err));
    if (first !== undefined) throw first;
  };
  try {
    await run(['truncate', '--size', String(opts.sizeBytes ?? 4 * 1024 ** 3), image]);
    await run(['mkfs.xfs', '-q', '-m', 'reflink=1', image]);
    const device = (await run(['losetup', '--find', '--show', image])).trim();
    undo.push(() => run(['losetup', '--detach', device]).catch(() => {}));
    await mkdir(mountPoint);
    await run(['mount', '-t', 'xfs', device, mountPoint]);
    undo.push(async () => {
      await detachLoopsUnder(mountPoint);
      await unmount(mountPoint);
    });
    return { path: mountPoint, device, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** `umount`, retried briefly: a loop device released a moment ago can still pin the mount. */
async function unmount(path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await run(['umount', path]);
      return;
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(100);
    }
  }
}
