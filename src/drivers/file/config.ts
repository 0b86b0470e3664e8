import { z } from 'zod';
import { exportConfigSchema } from '../../exports/config.js';

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
  /**
   * Export volumes to other hosts over iSCSI (LIO or tgt), NVMe-oF/TCP (nvmet) or NBD (qemu-nbd)
   * instead of only attaching them on this host as loop devices.
   */
  export: exportConfigSchema.optional(),
});
export type FileConfig = z.output<typeof fileConfigSchema>;
