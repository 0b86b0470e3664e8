import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private temporary directory and how to remove it. */
export interface TempDir {
  /** Absolute, symlink-free path (so it compares equal to what the kernel reports). */
  path: string;
  cleanup(): Promise<void>;
}

/** Creates a fresh directory under the OS temp dir (or `parent`). */
export async function tempDir(prefix = 'cairn-test-', parent = tmpdir()): Promise<TempDir> {
  const path = await realpath(await mkdtemp(join(parent, prefix)));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}
