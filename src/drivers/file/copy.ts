import { constants } from 'node:fs';
import { copyFile, stat, truncate, unlink } from 'node:fs/promises';
import type { CommandRunner } from '../../exec/runner.js';
import type { ProgressFn } from '../spi.js';

/**
 * Copies a volume file. With `reflink`, the copy shares extents with the source (instant,
 * copy-on-write, via the FICLONE ioctl). Otherwise `cp --sparse=always` makes a full copy that
 * keeps holes as holes; progress is read from how far the copy has grown.
 */
export async function copyVolumeFile(
  src: string,
  dst: string,
  opts: { reflink: boolean; runner: CommandRunner; onProgress?: ProgressFn | undefined },
): Promise<void> {
  await unlink(dst).catch(() => {});
  if (opts.reflink) {
    await copyFile(src, dst, constants.COPYFILE_FICLONE_FORCE);
    opts.onProgress?.(1);
    return;
  }
  const total = (await stat(src)).size;
  let timer: NodeJS.Timeout | undefined;
  if (opts.onProgress && total > 0) {
    const report = opts.onProgress;
    timer = setInterval(() => {
      stat(dst).then(
        (s) => report(Math.min(0.99, s.size / total)),
        () => {},
      );
    }, 200);
  }
  try {
    await opts.runner.run(['cp', '--sparse=always', '--reflink=never', '--', src, dst], {
      timeoutMs: 24 * 3600_000,
    });
  } finally {
    clearInterval(timer);
  }
  opts.onProgress?.(1);
}

/** Grows a volume file to `size` bytes (no-op when it is that large already). */
export async function growFile(path: string, size: number): Promise<void> {
  if ((await stat(path)).size < size) await truncate(path, size);
}
