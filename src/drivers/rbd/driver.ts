import { readFile } from 'node:fs/promises';
import type { ConnectionInfo } from '../../core/records.js';
import type { CephPoolDf, RbdImageInfo } from '../../parse/rbd.js';
import { ErrorCode, invalidArgument, isCairnError, notFound } from '../../util/errors.js';
import type { BackendStats, Capabilities, Driver, DriverContext, Inventory, VolumeRef } from '../spi.js';
import { type CephAccess, ENOTEMPTY, exitCodeOf } from './cli.js';
import { cliOps } from './cli-ops.js';
import type { RbdConfig } from './config.js';
import { writeKeyFile } from './keyfile.js';
import type { RbdOps } from './ops.js';

const MiB = 1024 * 1024;
const VOLUME = 'volume-';
const SNAPSHOT = 'snapshot-';
/** Hidden snapshot taken on a source volume to clone it; removed (to the trash namespace) at once. */
const CLONE_SNAP = 'clone-';
const DF_CACHE_MS = 10_000;

/** Reads `mon host` from a ceph.conf, for the connection info; empty when absent. */
async function monitorsFromConf(path: string | undefined): Promise<string[]> {
  if (!path) return [];
  const text = await readFile(path, 'utf8').catch(() => '');
  const m = /^\s*mon[ _]host\s*=\s*(.+)$/m.exec(text);
  return m?.[1] ? [m[1].trim()] : [];
}

const ignoreNotFound = (err: unknown) => {
  if (!isCairnError(err, ErrorCode.NotFound)) throw err;
};

/**
 * Creates an `rbd` driver: volumes are RBD images `volume-<id>` in one pool (and namespace),
 * snapshots are RBD snapshots `snapshot-<id>`, clones are copy-on-write (clone v2, no protect).
 * Operations go through `ops`: librbd in-process when the addon is built, else the `rbd`/`ceph`
 * CLIs with `--format json`.
 */
export async function createRbdDriver(config: RbdConfig, ctx: DriverContext): Promise<Driver> {
  const conf = config.cephConf ?? (config.monitors ? undefined : '/etc/ceph/ceph.conf');
  const keyFile = config.key ? await writeKeyFile(config.key) : undefined;
  const access: CephAccess = {
    conf,
    monitors: config.monitors,
    user: config.user,
    keyring: config.keyring,
    key: config.key,
    keyFile: keyFile?.path,
    timeoutMs: config.timeoutMs,
  };
  const where = `${config.pool}${config.namespace ? `/${config.namespace}` : ''}`;
  let ops: RbdOps | undefined;
  try {
    ops = await openOps(access, config, ctx);
    // The pool (and namespace) must exist: a clear error now rather than at the first create.
    await ops.checkPool();
  } catch (err) {
    await ops?.close();
    await keyFile?.remove();
    if (isCairnError(err, ErrorCode.NotFound)) {
      throw invalidArgument(
        `pool: pool "${config.pool}"${config.namespace ? ` (namespace "${config.namespace}")` : ''} does not exist on the cluster of backend ${ctx.backendName}; create it and run "rbd pool init"`,
        { cause: err },
      );
    }
    throw err;
  }
  return rbdDriver(ops, config, ctx, {
    where,
    conf,
    monitors: config.monitors ?? (await monitorsFromConf(conf)),
    close: async () => {
      await ops.close();
      await keyFile?.remove();
    },
  });
}

/** librbd when the addon is built (and CAIRN_RBD_NATIVE is not 0), else the CLIs. */
async function openOps(access: CephAccess, config: RbdConfig, ctx: DriverContext): Promise<RbdOps> {
  const { loadLibrbd, librbdUnavailableReason } = await import('./librbd.js');
  const lib = loadLibrbd();
  if (!lib) {
    ctx.logger.debug({ reason: librbdUnavailableReason() }, 'rbd: using the rbd/ceph CLIs');
    return cliOps(access, config.pool, config.namespace, ctx);
  }
  const { nativeOps } = await import('./native-ops.js');
  return nativeOps(
    lib,
    {
      conf: access.conf,
      monHost: access.monitors,
      user: access.user,
      key: access.key,
      keyring: access.keyring,
      timeoutSeconds: Math.max(1, Math.floor(access.timeoutMs / 1000)),
    },
    config.pool,
    config.namespace,
  );
}

function rbdDriver(
  ops: RbdOps,
  config: RbdConfig,
  ctx: DriverContext,
  env: { where: string; conf: string | undefined; monitors: string[]; close(): Promise<void> },
): Driver {
  const { where } = env;
  const volName = (id: string) => `${VOLUME}${id}`;
  const snapName = (id: string) => `${SNAPSHOT}${id}`;
  const features = config.features;

  const capabilities: Capabilities = {
    thin: true,
    snapshots: true,
    cloneSpeed: 'instant',
    revertToSnapshot: true,
    manageExisting: true,
    multiAttach: true,
    onlineExtend: true,
    protocols: ['rbd'],
    sizeAlignment: MiB,
  };

  // Pool capacity costs a cluster round trip (~150 ms through the CLI) and moves slowly: kept
  // for a few seconds.
  let dfCache: { at: number; value: Promise<CephPoolDf> } | undefined;
  function poolDf(): Promise<CephPoolDf> {
    if (!dfCache || Date.now() - dfCache.at > DF_CACHE_MS) {
      const value = ops.poolDf();
      dfCache = { at: Date.now(), value };
      value.catch(() => {
        dfCache = undefined;
      });
    }
    return dfCache.value;
  }

  /** Ancestors of an image (its parent, the parent's parent, …), counted up to `limit + 1`. */
  async function depthOf(name: string, limit: number): Promise<number> {
    let depth = 0;
    let cur: RbdImageInfo = await ops.info(name);
    while (cur.parent && depth <= limit) {
      depth++;
      cur = await ops.infoOf(cur.parent);
    }
    return depth;
  }

  const removeImage = (name: string) => ops.remove(name).catch(ignoreNotFound);

  /** Grows a fresh clone of `source` to the size asked for, and flattens it when its chain is too deep. */
  async function finishClone(volume: VolumeRef, source: string, sourceSize: number): Promise<void> {
    const name = volName(volume.id);
    if (volume.size > sourceSize) await ops.resize(name, volume.size);
    // The clone's chain: its parent (the source) and the source's own ancestors.
    if (1 + (await depthOf(source, config.maxCloneDepth)) > config.maxCloneDepth) {
      await ops.flatten({ pool: config.pool, namespace: config.namespace ?? '', image: name });
    }
  }

  /** Makes `volume` as a clone of `image@snap`; removes it again if any later step fails. */
  async function cloneFrom(
    volume: VolumeRef,
    image: string,
    snap: string,
    sourceSize: number,
  ): Promise<void> {
    const name = volName(volume.id);
    await creating(name, () => ops.clone(image, snap, name, features));
    try {
      await finishClone(volume, image, sourceSize);
    } catch (err) {
      await removeImage(name).catch(() => {});
      throw err;
    }
  }

  /**
   * Images whose create made nothing: found already there (ALREADY_EXISTS; someone else's), or
   * refused before reaching the cluster. Cairn cleans up after a failed create by deleting the
   * volume; that delete must neither remove an image this driver did not make nor wait for a
   * cluster that is down.
   */
  const foreign = new Set<string>();
  async function creating(name: string, make: () => Promise<unknown>): Promise<void> {
    try {
      await make();
    } catch (err) {
      const neverConnected = isCairnError(err, ErrorCode.Timeout) && err.details?.connected === false;
      if (isCairnError(err, ErrorCode.AlreadyExists) || neverConnected) foreign.add(name);
      throw err;
    }
  }

  /** An image that `manageVolume` may adopt: a plain image name, not one of Cairn's snapshots or clones. */
  function checkReference(reference: string): void {
    if (
      !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/.test(reference) ||
      reference.startsWith(SNAPSHOT) ||
      reference.startsWith(CLONE_SNAP)
    ) {
      throw invalidArgument(
        `reference: "${reference}" is not an image name in ${where} (letters, digits and "_.-")`,
      );
    }
  }

  /**
   * Removes an image whose snapshots still have clones. `flatten` gives each clone its own copy
   * of the data first; `trash` moves the image to the pool's trash, where Ceph keeps it for its
   * clones, and later deletes purge it once they are gone.
   */
  async function removeParent(name: string): Promise<void> {
    if (config.deleteParentPolicy === 'trash') {
      // Snapshots with clones stay (in the trash namespace): expected.
      await ops.snapPurge(name).catch(() => {});
      await ops.trashMove(name);
      return;
    }
    for (const c of await ops.children(name)) await ops.flatten(c);
    await ops.snapPurge(name).catch(ignoreNotFound);
    await removeImage(name);
  }

  return {
    capabilities,

    validateConnector(connector) {
      // Any host that can reach the monitors can attach; a connector is only checked for shape.
      if (!connector.host) throw invalidArgument('connector.host: missing');
    },

    async createVolume(volume) {
      const name = volName(volume.id);
      await creating(name, () => ops.create(name, volume.size, features));
      return undefined;
    },

    async cloneVolume(volume, source) {
      const src = volName(source.id);
      const snap = `${CLONE_SNAP}${volume.id}`;
      await ops.snapCreate(src, snap);
      try {
        await cloneFrom(volume, src, snap, source.size);
      } finally {
        // With clone v2 a snapshot that has a clone moves to the trash namespace and goes away
        // by itself with its last clone; without one (a failed clone) it is removed.
        await ops.snapRemove(src, snap).catch(() => {});
      }
      return undefined;
    },

    async createVolumeFromSnapshot(volume, snapshot) {
      await cloneFrom(volume, volName(snapshot.volumeId), snapName(snapshot.id), snapshot.size);
      return undefined;
    },

    async deleteVolume(volume) {
      const name = volName(volume.id);
      if (foreign.delete(name)) return; // the clean-up of a refused create: not ours to remove
      try {
        await removeImage(name);
      } catch (err) {
        if (exitCodeOf(err) !== ENOTEMPTY) throw err;
        // Snapshots with clones remain (moved to the trash namespace when Cairn deleted them).
        await removeParent(name);
      }
      if (config.deleteParentPolicy === 'trash') await ops.trashPurge();
    },

    async revertToSnapshot(volume, snapshot) {
      const name = volName(volume.id);
      await ops.snapRollback(name, snapName(snapshot.id));
      // A rollback gives the image the snapshot's size; the volume keeps its own.
      if ((await ops.info(name)).size < volume.size) await ops.resize(name, volume.size);
      return undefined;
    },

    volumeIdOf(reference) {
      return reference.startsWith(VOLUME) ? reference.slice(VOLUME.length) : undefined;
    },

    async manageVolume(volume, reference) {
      checkReference(reference);
      const found = await ops.info(reference).catch((err) => {
        if (isCairnError(err, ErrorCode.NotFound))
          throw notFound(`reference: no image "${reference}" in ${where} (backend ${ctx.backendName})`, {
            cause: err,
          });
        throw err;
      });
      const name = volName(volume.id);
      await ops.rename(reference, name);
      const size = Math.ceil(found.size / MiB) * MiB;
      if (size > found.size) {
        try {
          await ops.resize(name, size);
        } catch (err) {
          await ops.rename(name, reference).catch(() => {});
          throw err;
        }
      }
      return { size };
    },

    async unmanageVolume(volume) {
      return volName(volume.id);
    },

    async extendVolume(volume, newSize) {
      await ops.resize(volName(volume.id), newSize);
      return undefined;
    },

    async createSnapshot(snapshot, volume) {
      await ops.snapCreate(volName(volume.id), snapName(snapshot.id));
      return undefined;
    },

    async deleteSnapshot(snapshot) {
      await ops.snapRemove(volName(snapshot.volumeId), snapName(snapshot.id)).catch(ignoreNotFound);
    },

    async stats(): Promise<BackendStats> {
      const [du, space] = await Promise.all([ops.du(), poolDf()]);
      let provisioned = 0;
      let allocated = 0;
      let volumes = 0;
      let snapshots = 0;
      for (const e of du.images) {
        if (!e.image.startsWith(VOLUME)) continue;
        if (e.snapshot === undefined) volumes++;
        else if (e.snapshot.startsWith(SNAPSHOT)) snapshots++;
        else continue;
        provisioned += e.provisioned;
        allocated += e.used;
      }
      // Without a mgr the cluster reports no usage: 0 bytes then (Ceph's own answer).
      const free = space.pool ? space.pool.maxAvail : space.availBytes;
      const total = space.pool ? space.pool.maxAvail + space.pool.stored : space.totalBytes;
      return {
        totalBytes: Math.max(total, free),
        freeBytes: free,
        provisionedBytes: provisioned,
        allocatedBytes: allocated,
        thin: true,
        volumeCount: volumes,
        snapshotCount: snapshots,
      };
    },

    async exportVolume(volume, _connector, mode): Promise<ConnectionInfo> {
      const name = volName(volume.id);
      await ops.info(name).catch((err) => {
        if (isCairnError(err, ErrorCode.NotFound))
          throw notFound(`backend ${ctx.backendName}: image ${where}/${name} is missing`);
        throw err;
      });
      const data: Record<string, unknown> = {
        pool: config.pool,
        image: name,
        monitors: env.monitors,
        user: config.user,
      };
      if (config.namespace) data.namespace = config.namespace;
      if (env.conf) data.conf = env.conf;
      if (config.keyring) data.keyring = config.keyring;
      data.readOnly = mode === 'ro';
      return { protocol: 'rbd', data };
    },

    async unexportVolume() {
      // RBD needs no export: access is by cluster credentials.
    },

    async inventory() {
      const found: Inventory = { volumes: new Map(), snapshots: new Map() };
      for (const e of await ops.list()) {
        if (!e.image.startsWith(VOLUME)) continue;
        if (e.snapshot === undefined) found.volumes.set(e.image.slice(VOLUME.length), e.size);
        else if (e.snapshot.startsWith(SNAPSHOT))
          found.snapshots.set(e.snapshot.slice(SNAPSHOT.length), e.size);
      }
      return found;
    },

    close: () => env.close(),
  };
}
