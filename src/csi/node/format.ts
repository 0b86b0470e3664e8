import type { CommandRunner } from '../../exec/runner.js';
import { backendFailure, errorMessage, invalidState } from '../../util/errors.js';

/** File systems the node makes and mounts. */
export const FS_TYPES = ['ext4', 'xfs', 'btrfs'] as const;
export type FsType = (typeof FS_TYPES)[number];

export function isFsType(value: string): value is FsType {
  return (FS_TYPES as readonly string[]).includes(value);
}

/** How much of a device must read as zeros, besides having no signature, to count as blank. */
export const ZERO_CHECK_BYTES = 1024 * 1024;

/** What `blkid -p` found on a device: nothing, or its fields (TYPE, PTTYPE, USAGE, UUID, …). */
export type Probe = { blank: true } | { blank: false; fields: Record<string, string> };

/**
 * Looks for any signature on a device with low-level probing (`blkid -p`, which reads the
 * device itself rather than the cache): exit 2 means nothing was found. Exit 8 (ambiguous:
 * several signatures) counts as data, never as blank.
 */
export async function probe(runner: CommandRunner, device: string): Promise<Probe> {
  const res = await runner.run(['blkid', '-p', '-o', 'export', device], {
    root: true,
    timeoutMs: 60_000,
    okExitCodes: [0, 2, 8],
  });
  if (res.exitCode === 2) {
    // No signature is not proof of no data (a raw database, an unknown format): the first MiB
    // must also read as zeros before the device counts as blank.
    const cmp = await runner.run(['cmp', `--bytes=${ZERO_CHECK_BYTES}`, device, '/dev/zero'], {
      root: true,
      timeoutMs: 60_000,
      okExitCodes: [0, 1],
    });
    if (cmp.exitCode === 0) return { blank: true };
    return { blank: false, fields: { DATA: 'true' } };
  }
  const fields: Record<string, string> = {};
  for (const line of res.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  if (res.exitCode === 8) fields.AMBIGUOUS = 'true';
  return { blank: false, fields };
}

/** A short description of what a probe found, for error messages. */
export function describe(fields: Record<string, string>): string {
  if (fields.AMBIGUOUS) return 'several signatures (blkid: ambiguous)';
  if (fields.DATA) return 'data (no known signature, but its first MiB is not zeros)';
  if (fields.TYPE) return `a ${fields.TYPE} ${fields.USAGE ?? 'signature'}`;
  if (fields.PTTYPE) return `a ${fields.PTTYPE} partition table`;
  return 'an unknown signature';
}

/**
 * Makes `fsType` on a device only when it holds nothing, and returns the file system the device
 * now has. A device with data is never formatted: a file system of another type than the one
 * asked for (when one was asked for) or anything that is not a file system Cairn mounts fails
 * with INVALID_STATE (FAILED_PRECONDITION over gRPC). `wanted` null means "whatever is there, or
 * `fallback` on a blank device".
 */
export async function formatIfBlank(
  runner: CommandRunner,
  device: string,
  wanted: FsType | null,
  fallback: FsType,
  opts: { readOnly: boolean },
): Promise<{ fsType: FsType; formatted: boolean }> {
  const found = await probe(runner, device);
  if (found.blank) {
    if (opts.readOnly)
      throw invalidState(`${device} is blank and the volume is read-only: there is no file system to mount`);
    const fsType = wanted ?? fallback;
    await mkfs(runner, device, fsType);
    return { fsType, formatted: true };
  }
  const type = found.fields.TYPE;
  if (found.fields.AMBIGUOUS || !type || !isFsType(type)) {
    throw invalidState(
      `${device} holds ${describe(found.fields)}, not an ${FS_TYPES.join('/')} file system; it was left as it is`,
    );
  }
  if (wanted !== null && type !== wanted) {
    throw invalidState(
      `${device} already holds a ${type} file system, not the ${wanted} asked for; it was left as it is`,
    );
  }
  return { fsType: type, formatted: false };
}

/**
 * Makes a file system. No force flag is given: mkfs.xfs and mkfs.btrfs then refuse a device
 * with a signature, a second guard behind the probe (mke2fs asks only on a terminal, so for
 * ext4 the probe, run under the volume's lock, is the guard).
 */
export async function mkfs(runner: CommandRunner, device: string, fsType: FsType): Promise<void> {
  const argv: Record<FsType, string[]> = {
    ext4: ['mkfs.ext4', '-q', device],
    xfs: ['mkfs.xfs', '-q', device],
    btrfs: ['mkfs.btrfs', '-q', device],
  };
  await runner.run(argv[fsType], { root: true, timeoutMs: 600_000 });
}

/**
 * Grows a mounted file system to fill its device: ext4 by device (`resize2fs`), xfs and btrfs by
 * mount point. Each is a no-op when there is nothing to grow.
 */
export async function growFilesystem(
  runner: CommandRunner,
  fsType: string,
  device: string,
  mountPoint: string,
): Promise<void> {
  const argv =
    fsType === 'ext4'
      ? ['resize2fs', device]
      : fsType === 'xfs'
        ? ['xfs_growfs', '-d', mountPoint]
        : fsType === 'btrfs'
          ? ['btrfs', 'filesystem', 'resize', 'max', mountPoint]
          : null;
  if (argv === null) throw backendFailure(`cannot grow a ${fsType} file system`);
  try {
    await runner.run(argv, { root: true, timeoutMs: 600_000 });
  } catch (err) {
    // EXT4_IOC_RESIZE_FS needs CAP_SYS_RESOURCE, which some hosts withhold even from root.
    if (fsType === 'ext4' && /Permission denied to resize/.test(errorMessage(err)))
      throw backendFailure(
        `${errorMessage(err)} (growing a mounted ext4 file system needs CAP_SYS_RESOURCE: run the node plugin privileged)`,
        { cause: err },
      );
    throw err;
  }
}
