import { backendFailure } from '../util/errors.js';

/** One row of `rbd ls -l --format json`: an image, or one snapshot of it (`snapshot` set). */
export interface RbdListEntry {
  image: string;
  size: number;
  snapshot?: string;
  parent?: { pool: string; namespace: string; image: string; snapshot: string };
}

/** The parts of `rbd info --format json` Cairn uses. */
export interface RbdImageInfo {
  name: string;
  size: number;
  objectSize: number;
  features: string[];
  parent: { pool: string; namespace: string; image: string; snapshot: string; trash: boolean } | null;
}

/** One row of `rbd snap ls --all --format json`. */
export interface RbdSnapshot {
  id: number;
  name: string;
  size: number;
  /** `user`, `trash` (removed while clones remain) or `group`. */
  namespace: string;
}

/** One row of `rbd children --all --format json`. */
export interface RbdChild {
  pool: string;
  namespace: string;
  image: string;
  trash: boolean;
}

export interface RbdDu {
  provisioned: number;
  used: number;
  /** Per image, and per snapshot of an image (`snapshot` set). */
  images: Array<{ image: string; snapshot?: string; provisioned: number; used: number }>;
}

export interface CephPoolDf {
  totalBytes: number;
  availBytes: number;
  /** The pool's own statistics; null when the cluster has none (no mgr reports them). */
  pool: { stored: number; maxAvail: number } | null;
}

function json(stdout: string, what: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch (err) {
    throw backendFailure(`${what} printed output that is not JSON: ${(err as Error).message}`);
  }
}

function arr(v: unknown, what: string): Record<string, unknown>[] {
  if (!Array.isArray(v)) throw backendFailure(`${what}: expected a JSON list`);
  return v as Record<string, unknown>[];
}

function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw backendFailure(`${what}: not a number: ${String(v)}`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw backendFailure(`${what}: not a string: ${String(v)}`);
  return v;
}

/** Parses `rbd ls -l --format json` (an empty pool prints `[]`, or nothing on old versions). */
export function parseRbdList(stdout: string): RbdListEntry[] {
  if (stdout.trim() === '') return [];
  return arr(json(stdout, 'rbd ls -l'), 'rbd ls -l').map((e) => {
    const out: RbdListEntry = { image: str(e.image, 'rbd ls -l image'), size: num(e.size, 'rbd ls -l size') };
    if (typeof e.snapshot === 'string') out.snapshot = e.snapshot;
    const p = e.parent as Record<string, unknown> | undefined;
    if (p && typeof p === 'object') {
      out.parent = {
        pool: str(p.pool, 'parent pool'),
        namespace: typeof p.pool_namespace === 'string' ? p.pool_namespace : '',
        image: str(p.image, 'parent image'),
        snapshot: str(p.snapshot, 'parent snapshot'),
      };
    }
    return out;
  });
}

/** Parses `rbd info --format json`. */
export function parseRbdInfo(stdout: string): RbdImageInfo {
  const e = json(stdout, 'rbd info') as Record<string, unknown>;
  const p = e.parent as Record<string, unknown> | undefined;
  return {
    name: str(e.name, 'rbd info name'),
    size: num(e.size, 'rbd info size'),
    objectSize: num(e.object_size, 'rbd info object_size'),
    features: Array.isArray(e.features) ? e.features.map(String) : [],
    parent:
      p && typeof p === 'object'
        ? {
            pool: str(p.pool, 'parent pool'),
            namespace: typeof p.pool_namespace === 'string' ? p.pool_namespace : '',
            image: str(p.image, 'parent image'),
            snapshot: str(p.snapshot, 'parent snapshot'),
            trash: p.trash === true,
          }
        : null,
  };
}

/** Parses `rbd snap ls --all --format json`. */
export function parseRbdSnapList(stdout: string): RbdSnapshot[] {
  if (stdout.trim() === '') return [];
  return arr(json(stdout, 'rbd snap ls'), 'rbd snap ls').map((s) => ({
    id: num(s.id, 'snap id'),
    name: str(s.name, 'snap name'),
    size: num(s.size, 'snap size'),
    namespace: str((s.namespace as Record<string, unknown> | undefined)?.type ?? 'user', 'snap namespace'),
  }));
}

/** Parses `rbd children --all --format json`. */
export function parseRbdChildren(stdout: string): RbdChild[] {
  if (stdout.trim() === '') return [];
  return arr(json(stdout, 'rbd children'), 'rbd children').map((c) => ({
    pool: str(c.pool, 'child pool'),
    namespace: typeof c.pool_namespace === 'string' ? c.pool_namespace : '',
    image: str(c.image, 'child image'),
    trash: c.trash === true,
  }));
}

/** Parses `rbd du --format json`: the totals. */
export function parseRbdDu(stdout: string): RbdDu {
  if (stdout.trim() === '') return { provisioned: 0, used: 0, images: [] };
  const e = json(stdout, 'rbd du') as Record<string, unknown>;
  const images = (Array.isArray(e.images) ? (e.images as Record<string, unknown>[]) : []).map((i) => {
    const out: RbdDu['images'][number] = {
      image: str(i.name, 'rbd du name'),
      provisioned: num(i.provisioned_size, 'rbd du provisioned_size'),
      used: num(i.used_size ?? 0, 'rbd du used_size'),
    };
    if (typeof i.snapshot === 'string') out.snapshot = i.snapshot;
    return out;
  });
  return {
    provisioned: num(e.total_provisioned_size ?? 0, 'rbd du total_provisioned_size'),
    used: num(e.total_used_size ?? 0, 'rbd du total_used_size'),
    images,
  };
}

/** Parses `ceph df --format json` for one pool. */
export function parseCephDf(stdout: string, pool: string): CephPoolDf {
  const e = json(stdout, 'ceph df') as Record<string, unknown>;
  const stats = (e.stats ?? {}) as Record<string, unknown>;
  const pools = Array.isArray(e.pools) ? (e.pools as Record<string, unknown>[]) : [];
  const p = pools.find((x) => x.name === pool);
  const ps = (p?.stats ?? null) as Record<string, unknown> | null;
  return {
    totalBytes: num(stats.total_bytes ?? 0, 'ceph df total_bytes'),
    availBytes: num(stats.total_avail_bytes ?? 0, 'ceph df total_avail_bytes'),
    pool: ps
      ? {
          stored: num(ps.stored ?? ps.bytes_used ?? 0, 'ceph df pool stored'),
          maxAvail: num(ps.max_avail ?? 0, 'ceph df pool max_avail'),
        }
      : null,
  };
}
