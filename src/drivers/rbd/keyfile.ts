import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A Ceph key written to a private file, so it reaches the `rbd`/`ceph` tools without showing in `ps`. */
export interface KeyFile {
  path: string;
  remove(): Promise<void>;
}

const live = new Set<string>();
let hooked = false;

/** Writes `key` to a new file readable by this user only (0600, in a 0700 directory). */
export async function writeKeyFile(key: string): Promise<KeyFile> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-key-'));
  const path = join(dir, 'key');
  await writeFile(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
  live.add(dir);
  if (!hooked) {
    hooked = true;
    // A process that exits without closing its backends must not leave keys on disk.
    process.on('exit', () => {
      for (const d of live) rmSync(d, { recursive: true, force: true });
    });
  }
  return {
    path,
    async remove() {
      live.delete(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
