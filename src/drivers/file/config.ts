import { z } from 'zod';

/** Configuration of the `file` driver. */
export const fileConfigSchema = z.strictObject({
  /** Directory that holds the volume and snapshot files; created if missing. */
  path: z
    .string()
    .min(1)
    .refine((p) => p.startsWith('/'), 'must be an absolute path'),
  /** `thin`: sparse files. `thick`: space is allocated at create and extend (fallocate). */
  provisioning: z.enum(['thin', 'thick']).default('thin'),
  /**
   * Reflink (shared-extent) copies for snapshots and clones: `auto` uses them when the file
   * system supports them (btrfs, xfs with reflink), `always` refuses a file system without,
   * `never` always makes full sparse copies.
   */
  reflink: z.enum(['auto', 'always', 'never']).default('auto'),
});
export type FileConfig = z.output<typeof fileConfigSchema>;
