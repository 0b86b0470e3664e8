import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** One line of /proc/PID/mountinfo. */
export interface MountEntry {
  mountId: number;
  parentId: number;
  /** `major:minor` of the file system (for btrfs an anonymous device, shared by its bind mounts). */
  devno: string;
  /** The directory (or file) of the file system that is mounted here: `/` unless a bind mount of a part. */
  root: string;
  mountPoint: string;
  /** Per-mount options (`rw`/`ro`, `nosuid`, …). */
  options: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** Undoes the octal escapes the kernel writes for space, tab, newline and backslash. */
function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Parses the text of /proc/PID/mountinfo (see proc(5)); malformed lines are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    out.push({
      mountId: Number(fields[0]),
      parentId: Number(fields[1]),
      devno: fields[2]!,
      root: unescapeField(fields[3]!),
      mountPoint: unescapeField(fields[4]!),
      options: fields[5]!.split(','),
      fsType: fields[dash + 1]!,
      source: unescapeField(fields[dash + 2]!),
      superOptions: (fields[dash + 3] ?? '').split(','),
    });
  }
  return out;
}

/** The mount table of this process's mount namespace. */
export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/**
 * The topmost mount at `path` (the one a lookup of `path` sees), or null. The kernel lists mount
 * points with symlinks resolved, so `path` is resolved first (a kubelet directory may be a
 * symlink).
 */
export function mountAt(mounts: readonly MountEntry[], path: string): MountEntry | null {
  let real = path;
  try {
    real = realpathSync.native(path);
  } catch {
    // gone, or not reachable: compare as given
  }
  let found: MountEntry | null = null;
  for (const m of mounts) if (m.mountPoint === real) found = m;
  return found;
}

/** True when two mounts show the same file (or directory) of the same file system. */
export function sameSource(a: MountEntry, b: MountEntry): boolean {
  return a.devno === b.devno && a.root === b.root;
}

/** True when the mount is read-only (per mount or for the whole file system). */
export function isReadOnly(m: MountEntry): boolean {
  return m.options.includes('ro') || m.superOptions.includes('ro');
}
