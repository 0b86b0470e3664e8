import { existsSync, mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from './context.js';
import { hasCommand, isRoot, run, spawnTimed } from './proc.js';

const FS_MAGIC: Record<number, string> = {
  61267: 'ext4',
  1481003842: 'xfs',
  2435016766: 'btrfs',
  16914836: 'tmpfs',
  2035054128: 'overlayfs',
  801189825: 'zfs',
  26985: 'nfs',
  1702057286: 'fuse',
};

/** The file system type under `path` (from statfs), e.g. `ext4`, `xfs`. */
export function fsTypeOf(path: string): string {
  try {
    const type = statfsSync(path).type;
    return FS_MAGIC[type] ?? `0x${type.toString(16)}`;
  } catch {
    return 'unknown';
  }
}

/** Why this machine can't make a loop-device file system, or null when it can. */
export function loopUnavailable(extraCommands: readonly string[] = []): string | null {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (!isRoot()) return 'needs root (loop devices and mounts)';
  if (!existsSync('/dev/loop-control')) return 'no loop devices here (/dev/loop-control is missing)';
  for (const cmd of ['losetup', ...extraCommands]) if (!hasCommand(cmd)) return `needs ${cmd} on PATH`;
  return null;
}

/** Commands {@link makeXfs} needs besides losetup. */
export const XFS_COMMANDS = ['mkfs.xfs', 'mount', 'umount'];

/** A mounted scratch file system; `cleanup` unmounts it and frees the loop device and image. */
export interface ScratchFs {
  path: string;
  device: string;
  cleanup(): void;
}

/** True when `dir` is a mount point (listed in /proc/self/mounts). */
function isMounted(dir: string): boolean {
  const mounts = readFileSync('/proc/self/mounts', 'utf8');
  return mounts.split('\n').some((l) => l.split(' ')[1] === dir);
}

/**
 * Makes an xfs file system with reflink (`mkfs.xfs -m reflink=1`) on a sparse image file
 * attached to a loop device, and mounts it. Everything is registered with the run's cleanup,
 * so it is undone even when the benchmark throws or the run is interrupted.
 */
export function makeXfs(ctx: BenchContext, sizeBytes: number): ScratchFs {
  const why = loopUnavailable(XFS_COMMANDS);
  if (why) throw new Error(why);
  const dir = ctx.tempDir('xfs');
  const image = join(dir.path, 'xfs.img');
  const mnt = join(dir.path, 'mnt');
  mkdirSync(mnt);
  writeFileSync(image, '');
  run(['truncate', '--size', String(sizeBytes), '--', image]);
  run(['mkfs.xfs', '-q', '-m', 'reflink=1', '--', image]);
  const device = run(['losetup', '--find', '--show', '--', image]).stdout.trim();
  const detach = ctx.cleanup.add(`detaching ${device}`, () => {
    run(['losetup', '--detach', device]);
  });
  try {
    run(['mount', '-t', 'xfs', '--', device, mnt]);
  } catch (err) {
    detach();
    dir.remove();
    throw err;
  }
  const unmount = ctx.cleanup.add(`unmounting ${mnt}`, () => {
    if (!isMounted(mnt)) return;
    // A just-closed file can keep the mount busy for a moment: retry, then detach lazily.
    for (let i = 0; i < 5; i++) {
      if (spawnTimed(['umount', '--', mnt]).status === 0) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
    run(['umount', '--lazy', '--', mnt]);
  });
  return {
    path: mnt,
    device,
    cleanup() {
      unmount();
      detach();
      dir.remove();
    },
  };
}
