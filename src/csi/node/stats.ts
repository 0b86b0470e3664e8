import { readFile, stat, statfs } from 'node:fs/promises';

/** Bytes and inodes of a mounted file system, as decimal strings (CSI int64). */
export interface FsUsage {
  bytes: { total: string; available: string; used: string };
  inodes: { total: string; available: string; used: string };
}

/** Usage of the file system holding `path`, from statfs(2), computed in bigint. */
export async function fsUsage(path: string): Promise<FsUsage> {
  const s = await statfs(path, { bigint: true });
  const bsize = s.bsize;
  const nonNegative = (n: bigint) => (n < 0n ? 0n : n).toString();
  return {
    bytes: {
      total: (s.blocks * bsize).toString(),
      available: (s.bavail * bsize).toString(),
      used: nonNegative((s.blocks - s.bfree) * bsize),
    },
    inodes: {
      total: s.files.toString(),
      available: s.ffree.toString(),
      used: nonNegative(s.files - s.ffree),
    },
  };
}

/** `major:minor` of a device number, decoded as glibc's gnu_dev_major/minor do. */
export function devno(rdev: bigint): string {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/**
 * The size in bytes of the block device at `path` (a device node, or a file a device node is
 * bind-mounted on), from sysfs; null when `path` is not a block device or the device is gone.
 */
export async function blockDeviceSize(path: string): Promise<number | null> {
  const st = await stat(path, { bigint: true }).catch(() => null);
  if (st === null || !st.isBlockDevice()) return null;
  const sectors = await readFile(`/sys/dev/block/${devno(st.rdev)}/size`, 'utf8').catch(() => null);
  return sectors === null ? null : Number(sectors.trim()) * 512;
}
