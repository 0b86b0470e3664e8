import type { CephPoolDf, RbdDu, RbdImageInfo, RbdListEntry } from '../../parse/rbd.js';
import type { LibrbdModule, RbdImageInfo as NativeInfo, RbdCluster, RbdIoctx } from './librbd.js';
import type { ImageSpec, RbdOps } from './ops.js';

/** What the driver reads of an image, from librbd's fuller answer. */
function toInfo(i: NativeInfo): RbdImageInfo {
  const p = i.parent;
  return {
    name: i.name,
    size: i.size,
    objectSize: i.objectSize,
    features: i.featureNames,
    parent: p
      ? { pool: p.pool, namespace: p.namespace, image: p.image, snapshot: p.snap, trash: p.trash }
      : null,
  };
}

/**
 * RBD operations in-process through librbd (the fast path): one cluster connection per backend,
 * kept open, and an I/O context per pool/namespace. No process is started per operation.
 */
export async function nativeOps(
  lib: LibrbdModule,
  connect: Parameters<LibrbdModule['connect']>[0],
  pool: string,
  namespace: string | undefined,
): Promise<RbdOps> {
  const cluster: RbdCluster = await lib.connect(connect);
  const ioctxs = new Map<string, Promise<RbdIoctx>>();
  /** The I/O context of a pool/namespace, opened once. */
  const ioctx = (p: string, ns: string | undefined): Promise<RbdIoctx> => {
    const key = `${p}/${ns ?? ''}`;
    let io = ioctxs.get(key);
    if (!io) {
      io = cluster.openIoctx(p, ns || undefined);
      io.catch(() => ioctxs.delete(key));
      ioctxs.set(key, io);
    }
    return io;
  };
  const home = () => ioctx(pool, namespace);
  const at = (s: ImageSpec) => ioctx(s.pool, s.namespace);

  /** User snapshots of an image, oldest first. */
  const userSnaps = async (io: RbdIoctx, image: string) =>
    (await io.snapList(image)).filter((s) => s.namespace === 'user').sort((a, b) => a.id - b.id);

  return {
    kind: 'librbd',
    checkPool: async () => {
      await (await home()).list();
    },
    list: async () => {
      const io = await home();
      const out: RbdListEntry[] = [];
      await Promise.all(
        (await io.list()).map(async ({ name }) => {
          const [info, snaps] = await Promise.all([io.info(name), userSnaps(io, name)]);
          out.push({ image: name, size: info.size });
          for (const s of snaps) out.push({ image: name, size: s.size, snapshot: s.name });
        }),
      );
      return out;
    },
    info: async (image) => toInfo(await (await home()).info(image)),
    infoOf: async (spec) => toInfo(await (await at(spec)).info(spec.image)),
    create: async (image, size, features) =>
      (await home()).create(image, size, features?.length ? { features } : {}),
    remove: async (image) => (await home()).remove(image),
    resize: async (image, size) => (await home()).resize(image, size),
    rename: async (from, to) => (await home()).rename(from, to),
    snapCreate: async (image, snap) => (await home()).snapCreate(image, snap),
    snapRemove: async (image, snap) => (await home()).snapRemove(image, snap),
    snapPurge: async (image) => {
      const io = await home();
      for (const s of await userSnaps(io, image)) await io.snapRemove(image, s.name);
    },
    snapRollback: async (image, snap) => (await home()).snapRollback(image, snap),
    clone: async (image, snap, dest, features) =>
      (await home()).clone(image, snap, dest, features?.length ? { features } : {}),
    flatten: async (spec) => (await at(spec)).flatten(spec.image),
    children: async (image) =>
      (await (await home()).children(image)).map((c) => ({
        pool: c.pool,
        namespace: c.namespace,
        image: c.image,
        trash: c.trash,
      })),
    trashMove: async (image) => (await home()).trashMove(image, 0),
    trashPurge: async () => {
      // Like `rbd trash purge`: what is due goes; a parent whose clones remain refuses, and stays.
      const io = await home();
      const now = Date.now();
      for (const e of await io.trashList()) {
        if (e.source === 'user' && e.deferredUntil.getTime() <= now)
          await io.trashRemove(e.id).catch(() => {});
      }
    },
    du: async () => {
      // As `rbd du`: each snapshot holds what changed since the one before; the head, since the last.
      const io = await home();
      const du: RbdDu = { provisioned: 0, used: 0, images: [] };
      for (const { name } of await io.list()) {
        let previous: string | undefined;
        for (const s of await userSnaps(io, name)) {
          const used = await io.allocatedBytes(name, {
            snap: s.name,
            ...(previous ? { fromSnap: previous } : {}),
          });
          du.images.push({ image: name, snapshot: s.name, provisioned: s.size, used });
          previous = s.name;
        }
        const size = (await io.info(name)).size;
        const used = await io.allocatedBytes(name, previous ? { fromSnap: previous } : {});
        du.images.push({ image: name, provisioned: size, used });
      }
      for (const i of du.images) {
        du.provisioned += i.provisioned;
        du.used += i.used;
      }
      return du;
    },
    poolDf: async (): Promise<CephPoolDf> => {
      // librados has no pool max_avail (the mon computes it for `ceph df`): cluster-wide figures.
      const s = await cluster.stat();
      return { totalBytes: s.totalBytes, availBytes: s.availBytes, pool: null };
    },
    close: () => cluster.shutdown(),
  };
}
