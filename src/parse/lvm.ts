import { z } from 'zod';
import { backendFailure } from '../util/errors.js';

/** Volume group fields asked of `vgs -o`, in this order. */
export const VG_FIELDS = ['vg_name', 'vg_size', 'vg_free', 'vg_extent_size'] as const;
/**
 * Logical volume fields asked of `vgs -o`: with LV fields, `vgs` prints one row per LV. Only LV
 * fields: a segment field such as `segtype` would print one row per segment (an extended LV has
 * several).
 */
export const LV_FIELDS = [
  'lv_name',
  'lv_size',
  'origin',
  'origin_size',
  'pool_lv',
  'lv_layout',
  'lv_role',
  'lv_attr',
  'data_percent',
  'lv_active',
  'lv_skip_activation',
  'lv_device_open',
] as const;

/** A volume group, sizes in bytes. */
export interface VgInfo {
  name: string;
  size: number;
  free: number;
  extentSize: number;
}

/** One logical volume as `vgs`/`lvs` report it, sizes in bytes. */
export interface LvInfo {
  name: string;
  /** The LV's size; for a classic (COW) snapshot, the size of its COW area. */
  size: number;
  /** The LV this one is a snapshot of (thin or COW), or null. */
  origin: string | null;
  /**
   * For a COW snapshot: the size of the snapshot itself (its origin's size when it was taken);
   * for a COW origin, its own size; null otherwise.
   */
  originSize: number | null;
  /** The thin pool of a thin LV, or null. */
  pool: string | null;
  /** `lv_layout`: `linear`, `striped`, `thin,sparse` (a thin LV), `thin,pool`, `raid,raid1`… */
  layout: string[];
  /** `lv_role`: `public`, `private`, `origin`, `thickorigin`, `snapshot`, `thicksnapshot`, `thinsnapshot`… */
  roles: string[];
  /** The 10-character attribute string (`-wi-a-----`, `owi-a-s---`, `Vwi---tz-k`…). */
  attr: string;
  /** Thin LVs and pools: data used, in percent; COW snapshots: COW used; null when not active. */
  dataPercent: number | null;
  active: boolean;
  /** Thin snapshots are made with the activation-skip flag: not activated unless asked with -K. */
  skipActivation: boolean;
  /** Some process holds the device open (mounted, or opened); null when LVM cannot tell. */
  open: boolean | null;
}

/** What one `vgs -o <VG_FIELDS>,<LV_FIELDS> VG` said. */
export interface VgReport {
  /** Null when the report has no row: the VG has no LVs (or, with a failed exit, no VG). */
  vg: VgInfo | null;
  lvs: LvInfo[];
}

// LVM's JSON report gives every value as a string; `--units b --nosuffix` makes sizes integers.
const bytes = z.string().regex(/^\d+$/, 'a byte count').transform(Number);
const optionalBytes = z.union([z.literal('').transform(() => null), bytes]);
const percent = z.union([
  z.literal('').transform(() => null),
  z
    .string()
    .regex(/^\d+(\.\d+)?$/, 'a percentage')
    .transform(Number),
]);
const name = (s: string) => (s === '' ? null : s);
const list = (s: string) => (s === '' ? [] : s.split(','));

const vgRow = z.object({
  vg_name: z.string().min(1),
  vg_size: bytes,
  vg_free: bytes,
  vg_extent_size: bytes,
});
const lvRow = vgRow.extend({
  lv_name: z.string().min(1),
  lv_size: bytes,
  origin: z.string(),
  origin_size: optionalBytes,
  pool_lv: z.string(),
  lv_layout: z.string(),
  lv_role: z.string(),
  lv_attr: z.string().length(10),
  data_percent: percent,
  lv_active: z.string(),
  lv_skip_activation: z.string(),
  lv_device_open: z.string(),
});

function report<T extends z.ZodType>(row: T) {
  return z.object({ report: z.array(z.object({ vg: z.array(row) })).length(1) });
}

function parseJson(stdout: string, what: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch (err) {
    throw backendFailure(`${what} printed output that is not JSON: ${(err as Error).message}`);
  }
}

function check<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw backendFailure(
      `${what} printed an unexpected report: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
    );
  }
  return r.data;
}

const toVg = (r: z.output<typeof vgRow>): VgInfo => ({
  name: r.vg_name,
  size: r.vg_size,
  free: r.vg_free,
  extentSize: r.vg_extent_size,
});

/**
 * Parses `vgs --reportformat json --units b --nosuffix -o <VG_FIELDS>,<LV_FIELDS> VG`: the VG
 * (repeated on every row) and its visible LVs. A VG without LVs gives no row at all, so `vg` is
 * then null and the caller asks {@link parseVgs} for the VG alone.
 */
export function parseVgReport(stdout: string): VgReport {
  const rows = check(report(lvRow), parseJson(stdout, 'vgs'), 'vgs').report[0]!.vg;
  const first = rows[0];
  return {
    vg: first ? toVg(first) : null,
    lvs: rows.map((r) => ({
      name: r.lv_name,
      size: r.lv_size,
      origin: name(r.origin),
      originSize: r.origin_size,
      pool: name(r.pool_lv),
      layout: list(r.lv_layout),
      roles: list(r.lv_role),
      attr: r.lv_attr,
      dataPercent: r.data_percent,
      active: r.lv_active === 'active',
      skipActivation: r.lv_skip_activation !== '',
      open: r.lv_device_open === 'open' ? true : r.lv_device_open === '' ? false : null,
    })),
  };
}

/** Parses `vgs --reportformat json --units b --nosuffix -o <VG_FIELDS> VG`; null when no such VG. */
export function parseVgs(stdout: string): VgInfo | null {
  const rows = check(report(vgRow), parseJson(stdout, 'vgs'), 'vgs').report[0]!.vg;
  return rows[0] ? toVg(rows[0]) : null;
}

/** A classic copy-on-write snapshot. */
export const isCowSnapshot = (lv: LvInfo): boolean => lv.roles.includes('thicksnapshot');
/** The origin of classic COW snapshots: `lvremove --yes` would remove its snapshots with it. */
export const isCowOrigin = (lv: LvInfo): boolean => lv.roles.includes('thickorigin');
/** A thin pool. */
export const isThinPool = (lv: LvInfo): boolean => lv.layout.includes('thin') && lv.layout.includes('pool');
