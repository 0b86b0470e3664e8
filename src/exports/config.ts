import { z } from 'zod';

/** `host:port`, IPv4 or a bracketed IPv6 address. */
const portal = z
  .string()
  .regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d{1,5}$/, 'an address:port such as 192.0.2.10:3260');
/** An iSCSI or NVMe qualified-name prefix: the volume id is appended. */
const qualified = z
  .string()
  .regex(/^(iqn|nqn)\.\d{4}-\d{2}\.[a-z0-9.-]+(:[A-Za-z0-9.:-]*)?$/, 'an iqn./nqn. name');

const iscsi = z.strictObject({
  protocol: z.literal('iscsi'),
  /** `lio`: the kernel target through configfs; `tgt`: the userspace tgtd. */
  helper: z.enum(['lio', 'tgt']),
  /** Where initiators reach the target; two or more give multipath. */
  portals: z.array(portal).min(1).max(8),
  /** Target names are `<prefix>:<volume id>`. */
  iqnPrefix: qualified.default('iqn.2026-11.org.cairn'),
  /** Per-volume CHAP credentials, generated at export and returned in the connection info. */
  chap: z.boolean().default(true),
  /** tgt only: tgtd's control instance (`tgtadm -C N`); tgtd must be running. */
  tgtControlPort: z.number().int().min(0).max(65535).default(0),
});

const nvmeof = z.strictObject({
  protocol: z.literal('nvmeof'),
  /** nvmet (the kernel target, through configfs). */
  helper: z.literal('nvmet').default('nvmet'),
  transport: z.literal('tcp').default('tcp'),
  portals: z.array(portal).min(1).max(8),
  /** Subsystem names are `<prefix>:<volume id>`. */
  nqnPrefix: qualified.default('nqn.2026-11.org.cairn'),
});

const nbd = z.strictObject({
  protocol: z.literal('nbd'),
  /** qemu-nbd, one process per exported volume. */
  helper: z.literal('qemu-nbd').default('qemu-nbd'),
  /** The address qemu-nbd listens on. */
  address: z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\])$/, 'an IP address'),
  /** Ports handed out to exports, first come first served. */
  ports: z
    .tuple([z.number().int().min(1).max(65535), z.number().int().min(1).max(65535)])
    .refine(([a, b]) => a <= b, 'a [first, last] range')
    .default([10809, 10908]),
});

/** The `export` section of a `file` or `lvm` backend. */
export const exportConfigSchema = z.discriminatedUnion('protocol', [iscsi, nvmeof, nbd]);
export type ExportConfig = z.output<typeof exportConfigSchema>;
export type IscsiExportConfig = z.output<typeof iscsi>;
export type NvmeofExportConfig = z.output<typeof nvmeof>;
export type NbdExportConfig = z.output<typeof nbd>;
