import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Tells whether the file system under `dir` can make reflink copies, by trying one: file
 * system names lie (xfs without `reflink=1`, btrfs mounted with nodatacow), a real FICLONE doesn't.
 */
export async function supportsReflink(dir: string): Promise<boolean> {
  const probe = join(dir, `.cairn-reflink-probe-${randomUUID()}`);
  const copy = `${probe}.copy`;
  try {
    await writeFile(probe, Buffer.alloc(65536, 0xa5), { mode: 0o600 });
    await copyFile(probe, copy, constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    return false;
  } finally {
    await unlink(probe).catch(() => {});
    await unlink(copy).catch(() => {});
  }
}
