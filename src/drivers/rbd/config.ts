import { z } from 'zod';

const absolute = z
  .string()
  .min(1)
  .refine((p) => p.startsWith('/'), 'must be an absolute path');
const cephName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'letters, digits, "_", "." and "-"');

/** Configuration of the `rbd` (Ceph RBD) driver. */
export const rbdConfigSchema = z
  .strictObject({
    /** The RADOS pool that holds the images (must exist and be `rbd pool init`-ed). */
    pool: cephName,
    /** An optional RADOS namespace inside the pool. */
    namespace: cephName.optional(),
    /** Path of a ceph.conf; default `/etc/ceph/ceph.conf` when `monitors` is not given. */
    cephConf: absolute.optional(),
    /** Monitor addresses (`host:port`, or `[v2:…,v1:…]` vectors) instead of, or over, the conf. */
    monitors: z
      .array(z.string().regex(/^[[\]A-Za-z0-9:.,/_-]+$/, 'a monitor address'))
      .min(1)
      .optional(),
    /** The Ceph user, without `client.`. */
    user: cephName.default('admin'),
    /** Path of the user's keyring. A secret field: left out of dumps. */
    keyring: absolute.optional(),
    /** The user's key itself (base64). A secret: masked in logs, left out of dumps. */
    key: z.string().min(1).optional(),
    /** Image features for new images (`layering` is needed for clones); default: the cluster's. */
    features: z.array(z.string().regex(/^[a-z-]+$/, 'an rbd image feature')).optional(),
    /**
     * What deleting a volume does when clones still depend on one of its snapshots: `flatten`
     * copies the data into each clone first, then removes the image (slow for big images, frees
     * the space at once); `trash` moves the image to the pool's trash at once, where Ceph keeps
     * it while clones use it, and later deletes purge it (instant; space is freed later).
     */
    deleteParentPolicy: z.enum(['flatten', 'trash']).default('flatten'),
    /** A clone whose parent chain would be longer than this is flattened at once (Cinder's rbd_max_clone_depth). */
    maxCloneDepth: z.number().int().min(0).max(64).default(5),
    /** Every rbd/ceph command must finish within this many milliseconds (also the mon/osd op timeouts). */
    timeoutMs: z.number().int().min(1000).max(3_600_000).default(30_000),
  })
  .refine((c) => !(c.keyring && c.key), { message: 'give at most one of keyring and key', path: ['key'] });
export type RbdConfig = z.output<typeof rbdConfigSchema>;
