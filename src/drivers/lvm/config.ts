import { z } from 'zod';
import { exportConfigSchema } from '../../exports/config.js';
import { lvNameProblem, vgNameProblem } from './names.js';

const vgName = z.string().superRefine((v, ctx) => {
  const problem = vgNameProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: `not a volume group name: ${problem}` });
});
const lvName = z.string().superRefine((v, ctx) => {
  const problem = lvNameProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: `not a logical volume name: ${problem}` });
});

/** Configuration of the `lvm` driver. */
export const lvmConfigSchema = z.strictObject({
  /** The volume group that holds the volumes; it must exist. */
  volumeGroup: vgName,
  /**
   * A thin pool in the volume group: volumes are thin LVs in it, and snapshots and clones are
   * thin snapshots (instant). Without it, volumes are plain (thick) LVs, snapshots are classic
   * copy-on-write snapshots and clones are copies.
   */
  thinPool: lvName.optional(),
  /**
   * Export volumes to other hosts over iSCSI, NVMe-oF/TCP or NBD instead of only handing out
   * their device on this host.
   */
  export: exportConfigSchema.optional(),
  /**
   * An lvm.conf for Cairn's LVM commands (as Cinder's `lvm_conf_file`): they run with
   * `LVM_SYSTEM_DIR` set to its directory, which must hold it under the name `lvm.conf`
   * (and may hold an lvmlocal.conf). Default: the system's /etc/lvm.
   */
  lvmConf: z
    .string()
    .refine(
      (p) => p.startsWith('/') && p.endsWith('/lvm.conf'),
      'must be an absolute path ending in /lvm.conf',
    )
    .optional(),
  /** Every LVM command must finish within this many milliseconds (data copies have their own bound). */
  timeoutMs: z.number().int().min(1000).max(3_600_000).default(120_000),
});
export type LvmConfig = z.output<typeof lvmConfigSchema>;
