/**
 * The in-process fast path to Ceph: a typed wrapper over the `cairn_rbd` N-API addon
 * (`native/rbd/`, built by `scripts/build-native.mjs` against librbd-dev and librados-dev).
 *
 * Every call runs librados/librbd on a libuv worker thread and resolves a promise; nothing here
 * blocks the event loop. Failures are {@link CairnError}s mapped from the errno exactly as
 * `cli.ts` maps the `rbd` CLI's exit codes — ENOENT → `NOT_FOUND`, EEXIST → `ALREADY_EXISTS`,
 * ETIMEDOUT → `TIMEOUT` (with `details.connected`), anything else → `BACKEND_FAILURE` — with the
 * errno in `details.errno`, and also in `details.exitCode` where the CLI path keeps it (`rbd`
 * exits with the errno), so a driver can use either path with the same checks.
 *
 * The addon is loaded only by {@link loadLibrbd}, never at package import. Set
 * `CAIRN_RBD_NATIVE=0` to force the CLI path even when the addon is built.
 * @module
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  alreadyExists,
  backendFailure,
  CairnError,
  ErrorCode,
  invalidArgument,
  notFound,
} from '../../util/errors.js';
import { maskSecrets } from '../../util/redact.js';
import { EEXIST, ENOENT, ETIMEDOUT } from './cli.js';

// ---------------------------------------------------------------------------------------------
// Public types

/** RBD image features by name (`rbd/features.h`), for {@link RbdIoctx.create} and clones. */
export const RBD_FEATURES: Readonly<Record<string, number>> = Object.freeze({
  layering: 1,
  striping: 2,
  'exclusive-lock': 4,
  'object-map': 8,
  'fast-diff': 16,
  'deep-flatten': 32,
  journaling: 64,
  'data-pool': 128,
  operations: 256,
  migrating: 512,
  'non-primary': 1024,
  'dirty-cache': 2048,
});

/** Image features: names from {@link RBD_FEATURES}, or the bitmask itself. */
export type RbdFeatures = readonly string[] | number;

/** How to reach a cluster: the same facts the CLI path passes as arguments. */
export interface LibrbdConnectOptions {
  /** A ceph.conf to read. Without it, no conf file is read at all (not even /etc/ceph). */
  conf?: string | undefined;
  /** Monitor addresses; several are joined with commas. Overrides the conf's `mon host`. */
  monHost?: string | readonly string[] | undefined;
  /** The Ceph user without `client.`; default `admin`. */
  user?: string | undefined;
  /** The user's key (a secret: it never appears in an error). */
  key?: string | undefined;
  /** Path of the user's keyring. */
  keyring?: string | undefined;
  /** Bound on connecting and on every monitor and OSD operation, in whole seconds (≥ 1). */
  timeoutSeconds: number;
}

export interface RbdClusterStat {
  totalBytes: number;
  usedBytes: number;
  availBytes: number;
  objects: number;
}

/** A pool's usage (`rados_ioctx_pool_stat`). Without a ceph-mgr the cluster reports zeros. */
export interface RbdPoolStat {
  bytes: number;
  userBytes: number;
  objects: number;
  objectClones: number;
  objectCopies: number;
  objectsDegraded: number;
}

export interface RbdImageSpec {
  id: string;
  name: string;
}

/** The snapshot a clone hangs from. `snapNamespace` is `trash` once the snapshot was removed. */
export interface RbdParent {
  pool: string;
  poolId: number;
  namespace: string;
  image: string;
  imageId: string;
  /** The parent image itself is in the RBD trash. */
  trash: boolean;
  snap: string;
  snapId: number;
  snapNamespace: RbdSnapNamespace;
  /** Bytes of the child still backed by the parent. */
  overlap: number;
}

export interface RbdImageInfo {
  name: string;
  id: string;
  size: number;
  objectSize: number;
  objects: number;
  order: number;
  blockNamePrefix: string;
  features: number;
  featureNames: string[];
  opFeatures: number;
  flags: number;
  createdAt: Date;
  parent?: RbdParent;
}

/**
 * A snapshot's namespace: `user` for ordinary ones; `trash` for a snapshot removed while clone
 * v2 children still use it (its `name` is then a UUID and `trashOf` the name it had).
 */
export type RbdSnapNamespace = 'user' | 'group' | 'trash' | 'mirror' | 'unknown';

export interface RbdSnapInfo {
  id: number;
  name: string;
  size: number;
  namespace: RbdSnapNamespace;
  trashOf?: string;
  protected: boolean;
  createdAt: Date;
}

/** A clone of one of an image's snapshots. */
export interface RbdChild {
  pool: string;
  poolId: number;
  namespace: string;
  image: string;
  imageId: string;
  /** The child image is in the RBD trash. */
  trash: boolean;
  snap: string;
  snapId: number;
}

export interface RbdTrashEntry {
  /** The image id: trash entries are addressed by id, not name. */
  id: string;
  name: string;
  source: 'user' | 'mirroring' | 'migration' | 'removing' | 'user_parent' | 'unknown';
  deletedAt: Date;
  /** Before this, {@link RbdIoctx.trashRemove} needs `force`. */
  deferredUntil: Date;
}

/** A connection to a cluster. */
export interface RbdCluster {
  /** Raw capacity (`rados_cluster_stat`); zeros without a ceph-mgr. */
  stat(): Promise<RbdClusterStat>;
  poolStats(pool: string): Promise<RbdPoolStat>;
  /** An I/O context on a pool, and on an RBD namespace in it (which must exist). */
  openIoctx(pool: string, namespace?: string): Promise<RbdIoctx>;
  /** Closes every ioctx, then the connection. Idempotent. */
  shutdown(): Promise<void>;
}

/** Image operations in one pool (and namespace). Each call opens and closes the image itself. */
export interface RbdIoctx {
  readonly pool: string;
  readonly namespace: string | undefined;
  list(): Promise<RbdImageSpec[]>;
  create(
    name: string,
    sizeBytes: number,
    options?: { features?: RbdFeatures; order?: number },
  ): Promise<void>;
  /** ENOTEMPTY (`details.errno` 39) while the image has snapshots; EBUSY while it has watchers. */
  remove(name: string): Promise<void>;
  info(name: string): Promise<RbdImageInfo>;
  /** Shrinking is refused (EINVAL) unless `allowShrink`. */
  resize(name: string, sizeBytes: number, options?: { allowShrink?: boolean }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Copies the parent's data into a clone and detaches it from its parent. */
  flatten(name: string): Promise<void>;
  snapList(name: string): Promise<RbdSnapInfo[]>;
  snapCreate(name: string, snap: string): Promise<void>;
  /** A snapshot with clone v2 children moves to the `trash` namespace instead of failing. */
  snapRemove(name: string, snap: string): Promise<void>;
  snapRollback(name: string, snap: string): Promise<void>;
  /**
   * A clone v2 of `parent@snap` named `child` (in `destination`, default this ioctx). The
   * snapshot need not be protected, but the cluster must require mimic clients
   * (`ceph osd set-require-min-compat-client mimic`). Without `features`, the parent's.
   */
  clone(
    parent: string,
    snap: string,
    child: string,
    options?: { features?: RbdFeatures; destination?: RbdIoctx },
  ): Promise<void>;
  /** The clones of every snapshot of the image, trash-namespace snapshots and trashed children included. */
  children(name: string): Promise<RbdChild[]>;
  /** Moves the image to the RBD trash; it can't be removed from there before `delaySeconds`. */
  trashMove(name: string, delaySeconds?: number): Promise<void>;
  trashList(): Promise<RbdTrashEntry[]>;
  /** Removes a trashed image by id; before its deferment ends EPERM unless `force`. */
  trashRemove(id: string, options?: { force?: boolean }): Promise<void>;
  trashRestore(id: string, name: string): Promise<void>;
  /**
   * Bytes the image's own objects take (whole objects, not its parent's), as `rbd du` reports:
   * at `snap` (default the head), and with `fromSnap` only what changed since that snapshot.
   */
  allocatedBytes(name: string, options?: { snap?: string; fromSnap?: string }): Promise<number>;
  /** A small write (≤ 64 MiB), for tests and tools: not a data path. */
  write(name: string, offset: number, data: Uint8Array): Promise<void>;
  /** A small read (≤ 64 MiB); shorter at the end of the image. */
  read(name: string, offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** The loaded addon. */
export interface LibrbdModule {
  /** The librbd version of the headers it was built against, e.g. `1.16.0`. */
  readonly librbdVersion: string;
  /** The `.node` file it was loaded from. */
  readonly path: string;
  connect(options: LibrbdConnectOptions): Promise<RbdCluster>;
}

// ---------------------------------------------------------------------------------------------
// The addon's own interface (native/rbd/src): positional arguments, opaque handles

declare const handle: unique symbol;
type Handle<K extends string> = { readonly [handle]: K };
type ClusterHandle = Handle<'cluster'>;
type IoctxHandle = Handle<'ioctx'>;
type Raw<T> = Omit<T, 'createdAt' | 'deletedAt' | 'deferredUntil'> & Record<string, unknown>;

interface Native {
  librbdVersion: string;
  connect(
    conf: string | null,
    monHost: string | null,
    user: string,
    key: string | null,
    keyring: string | null,
    timeoutSeconds: number,
  ): Promise<ClusterHandle>;
  shutdown(c: ClusterHandle): Promise<void>;
  clusterStat(c: ClusterHandle): Promise<RbdClusterStat>;
  poolStat(c: ClusterHandle, pool: string): Promise<RbdPoolStat>;
  ioctxOpen(c: ClusterHandle, pool: string, namespace: string | null): Promise<IoctxHandle>;
  ioctxClose(io: IoctxHandle): Promise<void>;
  list(io: IoctxHandle): Promise<RbdImageSpec[]>;
  create(
    io: IoctxHandle,
    name: string,
    size: number,
    features: number | null,
    order: number | null,
  ): Promise<void>;
  remove(io: IoctxHandle, name: string): Promise<void>;
  rename(io: IoctxHandle, from: string, to: string): Promise<void>;
  resize(io: IoctxHandle, name: string, size: number, allowShrink: boolean): Promise<void>;
  flatten(io: IoctxHandle, name: string): Promise<void>;
  info(io: IoctxHandle, name: string): Promise<Raw<RbdImageInfo> & { createdAt: number }>;
  write(io: IoctxHandle, name: string, offset: number, data: Uint8Array): Promise<void>;
  read(io: IoctxHandle, name: string, offset: number, length: number): Promise<Buffer>;
  allocated(io: IoctxHandle, name: string, snap: string | null, fromSnap: string | null): Promise<number>;
  snapList(io: IoctxHandle, name: string): Promise<Array<Raw<RbdSnapInfo> & { createdAt: number }>>;
  children(io: IoctxHandle, name: string): Promise<RbdChild[]>;
  snapCreate(io: IoctxHandle, name: string, snap: string): Promise<void>;
  snapRemove(io: IoctxHandle, name: string, snap: string): Promise<void>;
  snapRollback(io: IoctxHandle, name: string, snap: string): Promise<void>;
  clone(
    parentIo: IoctxHandle,
    parent: string,
    snap: string,
    childIo: IoctxHandle,
    child: string,
    features: number | null,
  ): Promise<void>;
  trashMove(io: IoctxHandle, name: string, delaySeconds: number): Promise<void>;
  trashList(
    io: IoctxHandle,
  ): Promise<Array<Raw<RbdTrashEntry> & { deletedAt: number; deferredUntil: number }>>;
  trashRemove(io: IoctxHandle, id: string, force: boolean): Promise<void>;
  trashRestore(io: IoctxHandle, id: string, name: string): Promise<void>;
}

/** The addon's rejection: an Error with the errno, its name and the librados/librbd call. */
interface NativeError extends Error {
  errno: number;
  code: string;
  fn: string;
}

// ---------------------------------------------------------------------------------------------
// Errors

function isNativeError(err: unknown): err is NativeError {
  return err instanceof Error && typeof (err as NativeError).errno === 'number';
}

/**
 * The errno of a failed Ceph call on either path: `details.errno` from this module, or the
 * `rbd` CLI's exit code (which is the errno) from `cli.ts`.
 */
export function errnoOf(err: unknown): number | undefined {
  if (!(err instanceof CairnError)) return undefined;
  const n = err.details?.errno ?? err.details?.exitCode;
  return typeof n === 'number' ? n : undefined;
}

/** Maps an addon error as `cli.ts` maps exit codes; `secrets` are masked from the message. */
function toCairnError(
  err: unknown,
  opts: { connecting?: boolean; secrets?: readonly string[] } = {},
): unknown {
  if (!isNativeError(err)) return err;
  const msg = maskSecrets(err.message, opts.secrets ?? []);
  // exitCode: the same number where cli.ts callers (exitCodeOf) look for it.
  const details = { errno: err.errno, exitCode: err.errno, code: err.code, fn: err.fn };
  if (err.errno === ENOENT) return notFound(msg, { cause: err, details });
  if (err.errno === EEXIST) return alreadyExists(msg, { cause: err, details });
  if (err.errno === ETIMEDOUT) {
    // A connect that timed out never reached the cluster, so it changed nothing.
    return new CairnError(ErrorCode.Timeout, `${msg}: the cluster did not answer in time`, {
      cause: err,
      details: { ...details, connected: !opts.connecting },
    });
  }
  return backendFailure(msg, { cause: err, details });
}

async function call<T>(p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (err) {
    throw toCairnError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Argument checks: the addon checks types too, but these name the field the way Cairn does

function name(field: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0'))
    throw invalidArgument(`${field}: must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function count(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw invalidArgument(`${field}: must be a whole number of at least 0, got ${String(v)}`);
  return v;
}

/** A feature list or bitmask as the bitmask librbd takes; unknown names are refused. */
export function featureMask(features: RbdFeatures): number {
  if (typeof features === 'number') return count('features', features);
  let mask = 0;
  for (const f of features) {
    const bit = RBD_FEATURES[f];
    if (bit === undefined)
      throw invalidArgument(
        `features: unknown rbd image feature "${f}" (known: ${Object.keys(RBD_FEATURES).join(', ')})`,
      );
    mask |= bit;
  }
  return mask;
}

/** The names of the features in a bitmask. */
export function featureNames(mask: number): string[] {
  return Object.entries(RBD_FEATURES)
    .filter(([, bit]) => (mask & bit) !== 0)
    .map(([n]) => n);
}

const SNAP_NAMESPACES = new Set<RbdSnapNamespace>(['user', 'group', 'trash', 'mirror']);
const snapNamespace = (v: unknown): RbdSnapNamespace =>
  SNAP_NAMESPACES.has(v as RbdSnapNamespace) ? (v as RbdSnapNamespace) : 'unknown';
const NS_BY_TYPE: RbdSnapNamespace[] = ['user', 'group', 'trash', 'mirror'];

// ---------------------------------------------------------------------------------------------
// Handles

class Ioctx implements RbdIoctx {
  #closed?: Promise<void>;

  constructor(
    private readonly native: Native,
    readonly io: IoctxHandle,
    readonly pool: string,
    readonly namespace: string | undefined,
  ) {}

  list() {
    return call(() => this.native.list(this.io));
  }

  async create(image: string, sizeBytes: number, options: { features?: RbdFeatures; order?: number } = {}) {
    const features = options.features === undefined ? null : featureMask(options.features);
    const order = options.order === undefined ? null : count('order', options.order);
    await call(() =>
      this.native.create(this.io, name('image', image), count('size', sizeBytes), features, order),
    );
  }

  async remove(image: string) {
    await call(() => this.native.remove(this.io, name('image', image)));
  }

  async info(image: string): Promise<RbdImageInfo> {
    const raw = await call(() => this.native.info(this.io, name('image', image)));
    const out: RbdImageInfo = {
      name: raw.name,
      id: raw.id,
      size: raw.size,
      objectSize: raw.objectSize,
      objects: raw.objects,
      order: raw.order,
      blockNamePrefix: raw.blockNamePrefix,
      features: raw.features,
      featureNames: featureNames(raw.features),
      opFeatures: raw.opFeatures,
      flags: raw.flags,
      createdAt: new Date(raw.createdAt),
    };
    const p = raw.parent as (Omit<RbdParent, 'snapNamespace'> & { snapNamespaceType: number }) | undefined;
    if (p) {
      const { snapNamespaceType, ...rest } = p;
      out.parent = { ...rest, snapNamespace: NS_BY_TYPE[snapNamespaceType] ?? 'unknown' };
    }
    return out;
  }

  async resize(image: string, sizeBytes: number, options: { allowShrink?: boolean } = {}) {
    const size = count('size', sizeBytes);
    await call(() => this.native.resize(this.io, name('image', image), size, options.allowShrink === true));
  }

  async rename(from: string, to: string) {
    await call(() => this.native.rename(this.io, name('from', from), name('to', to)));
  }

  async flatten(image: string) {
    await call(() => this.native.flatten(this.io, name('image', image)));
  }

  async snapList(image: string): Promise<RbdSnapInfo[]> {
    const raw = await call(() => this.native.snapList(this.io, name('image', image)));
    return raw.map((s) => ({
      id: s.id,
      name: s.name,
      size: s.size,
      namespace: snapNamespace(s.namespace),
      ...(typeof s.trashOf === 'string' ? { trashOf: s.trashOf } : {}),
      protected: s.protected,
      createdAt: new Date(s.createdAt),
    }));
  }

  async snapCreate(image: string, snap: string) {
    await call(() => this.native.snapCreate(this.io, name('image', image), name('snap', snap)));
  }

  async snapRemove(image: string, snap: string) {
    await call(() => this.native.snapRemove(this.io, name('image', image), name('snap', snap)));
  }

  async snapRollback(image: string, snap: string) {
    await call(() => this.native.snapRollback(this.io, name('image', image), name('snap', snap)));
  }

  async clone(
    parent: string,
    snap: string,
    child: string,
    options: { features?: RbdFeatures; destination?: RbdIoctx } = {},
  ) {
    const dest = options.destination ?? this;
    if (!(dest instanceof Ioctx)) throw invalidArgument('destination: must be an ioctx of this module');
    const features = options.features === undefined ? null : featureMask(options.features);
    await call(() =>
      this.native.clone(
        this.io,
        name('parent', parent),
        name('snap', snap),
        dest.io,
        name('child', child),
        features,
      ),
    );
  }

  children(image: string) {
    return call(() => this.native.children(this.io, name('image', image)));
  }

  async trashMove(image: string, delaySeconds = 0) {
    await call(() =>
      this.native.trashMove(this.io, name('image', image), count('delaySeconds', delaySeconds)),
    );
  }

  async trashList(): Promise<RbdTrashEntry[]> {
    const raw = await call(() => this.native.trashList(this.io));
    return raw.map((t) => ({
      id: t.id,
      name: t.name,
      source: t.source,
      deletedAt: new Date(t.deletedAt),
      deferredUntil: new Date(t.deferredUntil),
    }));
  }

  async trashRemove(id: string, options: { force?: boolean } = {}) {
    await call(() => this.native.trashRemove(this.io, name('id', id), options.force === true));
  }

  async trashRestore(id: string, image: string) {
    await call(() => this.native.trashRestore(this.io, name('id', id), name('image', image)));
  }

  allocatedBytes(image: string, options: { snap?: string; fromSnap?: string } = {}) {
    const snap = options.snap === undefined ? null : name('snap', options.snap);
    const from = options.fromSnap === undefined ? null : name('fromSnap', options.fromSnap);
    return call(() => this.native.allocated(this.io, name('image', image), snap, from));
  }

  async write(image: string, offset: number, data: Uint8Array) {
    if (!(data instanceof Uint8Array)) throw invalidArgument('data: must be a Uint8Array');
    await call(() => this.native.write(this.io, name('image', image), count('offset', offset), data));
  }

  read(image: string, offset: number, length: number) {
    return call(() =>
      this.native.read(this.io, name('image', image), count('offset', offset), count('length', length)),
    );
  }

  close(): Promise<void> {
    this.#closed ??= call(() => this.native.ioctxClose(this.io));
    return this.#closed;
  }
}

class Cluster implements RbdCluster {
  #down?: Promise<void>;

  constructor(
    private readonly native: Native,
    private readonly c: ClusterHandle,
  ) {}

  stat() {
    return call(() => this.native.clusterStat(this.c));
  }

  poolStats(pool: string) {
    return call(() => this.native.poolStat(this.c, name('pool', pool)));
  }

  async openIoctx(pool: string, namespace?: string): Promise<RbdIoctx> {
    const ns = namespace === undefined || namespace === '' ? undefined : name('namespace', namespace);
    const io = await call(() => this.native.ioctxOpen(this.c, name('pool', pool), ns ?? null));
    return new Ioctx(this.native, io, pool, ns);
  }

  shutdown(): Promise<void> {
    this.#down ??= call(() => this.native.shutdown(this.c));
    return this.#down;
  }
}

function wrap(native: Native, path: string): LibrbdModule {
  return {
    librbdVersion: native.librbdVersion,
    path,
    async connect(o: LibrbdConnectOptions): Promise<RbdCluster> {
      const secs = o.timeoutSeconds;
      if (!Number.isSafeInteger(secs) || secs < 1)
        throw invalidArgument(`timeoutSeconds: must be a whole number of at least 1, got ${String(secs)}`);
      const monHost = typeof o.monHost === 'string' ? o.monHost : o.monHost?.join(',');
      const user = name('user', o.user ?? 'admin');
      try {
        const c = await native.connect(
          o.conf ?? null,
          monHost || null,
          user,
          o.key ?? null,
          o.keyring ?? null,
          secs,
        );
        return new Cluster(native, c);
      } catch (err) {
        // The addon never puts the key in a message; masking is a second line of defence.
        throw toCairnError(err, { connecting: true, secrets: o.key ? [o.key] : [] });
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Loading

const ADDON = join('native', 'rbd', 'build', 'Release', 'cairn_rbd.node');

/**
 * Where the built addon is: `native/rbd/build/Release/cairn_rbd.node` in the package root, the
 * first directory above this file with a package.json (this file runs from `src/drivers/rbd/`
 * under a TypeScript runner and from `dist/src/drivers/rbd/` once compiled). Undefined when
 * it was not built.
 */
export function librbdAddonPath(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const p = join(dir, ADDON);
      return existsSync(p) ? p : undefined;
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

let loaded: { module?: LibrbdModule; reason?: string } | undefined;

/**
 * The addon, loaded once on first use; `undefined` when the rbd driver must use the CLI path:
 * the addon was not built (no librbd-dev when `npm run build` ran), it failed to load (see
 * {@link librbdUnavailableReason}), or the environment variable `CAIRN_RBD_NATIVE=0` forces
 * the CLI path (read on every call, so it can be flipped at run time).
 */
export function loadLibrbd(): LibrbdModule | undefined {
  if (process.env.CAIRN_RBD_NATIVE === '0') return undefined;
  if (!loaded) {
    const path = librbdAddonPath();
    if (!path) {
      loaded = {
        reason: `the rbd fast path is not built (${ADDON} is missing: install librbd-dev and run npm run build)`,
      };
    } else {
      try {
        const native = createRequire(import.meta.url)(path) as Native;
        loaded = { module: wrap(native, path) };
      } catch (err) {
        loaded = { reason: `${path} failed to load: ${(err as Error).message}` };
      }
    }
  }
  return loaded.module;
}

/** Why {@link loadLibrbd} returns undefined, or undefined when it does not. */
export function librbdUnavailableReason(): string | undefined {
  if (process.env.CAIRN_RBD_NATIVE === '0') return 'CAIRN_RBD_NATIVE=0 forces the rbd CLI path';
  loadLibrbd();
  return loaded?.reason;
}
