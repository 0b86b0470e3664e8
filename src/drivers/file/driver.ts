import { link, lstat, mkdir, open, readdir, rename, stat, statfs, truncate, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { ConnectionInfo } from '../../core/records.js';
import { connectorCheck, createExporter, type Exporter } from '../../exports/index.js';
import {
  alreadyExists,
  insufficientCapacity,
  invalidArgument,
  notFound,
  unsupported,
} from '../../util/errors.js';
import { hasCode } from '../../util/fsx.js';
import { formatSize } from '../../util/size.js';
import type {
  BackendStats,
  Capabilities,
  Driver,
  DriverContext,
  Inventory,
  ProgressFn,
  SnapshotRef,
  VolumeRef,
} from '../spi.js';
import type { FileConfig } from './config.js';
import { copyVolumeFile, growFile } from './copy.js';
import { supportsReflink } from './reflink.js';

const MiB = 1024 * 1024;

/** Creates a `file` driver: volumes are raw files in one directory, exported to this host only. */
export async function createFileDriver(config: FileConfig, ctx: DriverContext): Promise<Driver> {
  await mkdir(config.path, { recursive: true, mode: 0o700 });
  const reflink = config.reflink !== 'never' && (await supportsReflink(config.path));
  if (config.reflink === 'always' && !reflink) {
    throw unsupported(
      `backend ${ctx.backendName}: path: ${config.path} is on a file system without reflink support, but reflink is "always"`,
    );
  }
  const thick = config.provisioning === 'thick';
  const host = hostname();
  const volumeFile = (id: string) => join(config.path, `volume-${id}`);
  const snapshotFile = (id: string) => join(config.path, `snapshot-${id}`);
  const copyOpts = (onProgress?: ProgressFn) => ({ reflink, runner: ctx.runner, onProgress });
  const exporter: Exporter | undefined = config.export ? await createExporter(config.export, ctx) : undefined;
  const target = (volume: VolumeRef) => ({
    volumeId: volume.id,
    path: volumeFile(volume.id),
    size: volume.size,
  });

  const capabilities: Capabilities = {
    thin: !thick,
    snapshots: true,
    cloneSpeed: reflink ? 'instant' : 'copy',
    revertToSnapshot: true,
    manageExisting: true,
    multiAttach: false,
    onlineExtend: exporter?.onlineResize ?? true,
    protocols: exporter ? [exporter.protocol] : ['local'],
    sizeAlignment: MiB,
  };

  async function ensureSpace(bytes: number): Promise<void> {
    if (!thick) return;
    const fs = await statfs(config.path);
    const free = fs.bavail * fs.bsize;
    if (bytes > free) {
      throw insufficientCapacity(
        `backend ${ctx.backendName} is thick-provisioned and has ${formatSize(free)} free; ${formatSize(bytes)} requested`,
      );
    }
  }

  async function allocate(path: string, size: number): Promise<void> {
    if (thick) await ctx.runner.run(['fallocate', '--length', String(size), '--', path]);
    else await truncate(path, size);
  }

  /** Runs `make` for a new file and removes the file if it fails, so nothing half-made stays. */
  async function createFile(path: string, make: () => Promise<void>): Promise<void> {
    try {
      await make();
    } catch (err) {
      await unlink(path).catch(() => {});
      throw err;
    }
  }

  async function mustExist(path: string, what: string): Promise<void> {
    try {
      await stat(path);
    } catch (err) {
      if (hasCode(err, 'ENOENT'))
        throw notFound(`backend ${ctx.backendName}: ${what} file ${path} is missing`);
      throw err;
    }
  }

  const validateConnector = connectorCheck(exporter, ctx.backendName, 'file');

  /** Makes a new volume file from a copy of `source`, grown to the volume's size. */
  async function copyIntoVolume(
    source: string,
    what: string,
    volume: VolumeRef,
    onProgress?: ProgressFn,
  ): Promise<void> {
    await mustExist(source, what);
    await ensureSpace(volume.size);
    const path = volumeFile(volume.id);
    await createFile(path, async () => {
      await copyVolumeFile(source, path, copyOpts(onProgress));
      await growFile(path, volume.size);
    });
  }

  /** A file in the pool that `manageVolume` may adopt: a plain name, not one of Cairn's own snapshots. */
  function managedPath(reference: string): string {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,254}$/.test(reference) || reference.startsWith('snapshot-')) {
      throw invalidArgument(
        `reference: "${reference}" is not a file name in the pool directory of backend ${ctx.backendName} (letters, digits and "_.:@+-"; not a snapshot-… file)`,
      );
    }
    return join(config.path, reference);
  }

  return {
    capabilities,
    validateConnector,

    async revertToSnapshot(volume, snapshot) {
      const target = volumeFile(volume.id);
      await mustExist(target, `volume ${volume.id}`);
      // Copy aside, then rename over the volume: a failure leaves the volume as it was.
      const temp = join(config.path, `.revert-${volume.id}`);
      await ensureSpace(reflink ? 0 : volume.size);
      await createFile(temp, async () => {
        await copyVolumeFile(snapshotFile(snapshot.id), temp, copyOpts());
        await allocate(temp, volume.size);
        await rename(temp, target);
      });
      return undefined;
    },

    volumeIdOf(reference) {
      return reference.startsWith('volume-') ? reference.slice('volume-'.length) : undefined;
    },

    async manageVolume(volume, reference) {
      const source = managedPath(reference);
      const s = await lstat(source).catch((err) => {
        if (hasCode(err, 'ENOENT'))
          throw notFound(`reference: no file "${reference}" in ${config.path} (backend ${ctx.backendName})`);
        throw err;
      });
      if (!s.isFile() || s.size === 0)
        throw invalidArgument(`reference: "${reference}" is not a non-empty regular file`);
      const target = volumeFile(volume.id);
      // link + unlink: unlike rename, never replaces a file that is there already.
      await link(source, target).catch((err) => {
        if (hasCode(err, 'EEXIST'))
          throw alreadyExists(`backend ${ctx.backendName}: ${target} exists already`);
        throw err;
      });
      await unlink(source);
      const size = Math.ceil(s.size / MiB) * MiB;
      try {
        await growFile(target, size);
      } catch (err) {
        await rename(target, source).catch(() => {});
        throw err;
      }
      return { size };
    },

    async unmanageVolume(volume) {
      return `volume-${volume.id}`;
    },

    async createVolume(volume: VolumeRef) {
      await ensureSpace(volume.size);
      const path = volumeFile(volume.id);
      const fh = await open(path, 'wx', 0o600).catch((err) => {
        if (hasCode(err, 'EEXIST')) throw alreadyExists(`backend ${ctx.backendName}: ${path} exists already`);
        throw err;
      });
      await createFile(path, async () => {
        try {
          if (thick) await ctx.runner.run(['fallocate', '--length', String(volume.size), '--', path]);
          else await fh.truncate(volume.size);
        } finally {
          await fh.close();
        }
      });
      return undefined;
    },

    async cloneVolume(volume, source, onProgress) {
      await copyIntoVolume(volumeFile(source.id), `source volume ${source.id}`, volume, onProgress);
      return undefined;
    },

    async createVolumeFromSnapshot(volume, snapshot: SnapshotRef, onProgress) {
      await copyIntoVolume(snapshotFile(snapshot.id), `snapshot ${snapshot.id}`, volume, onProgress);
      return undefined;
    },

    async deleteVolume(volume) {
      await exporter?.remove(volume.id);
      await unlink(volumeFile(volume.id)).catch((err) => {
        if (!hasCode(err, 'ENOENT')) throw err;
      });
    },

    async extendVolume(volume, newSize) {
      const path = volumeFile(volume.id);
      await mustExist(path, `volume ${volume.id}`);
      await ensureSpace(newSize - volume.size);
      await allocate(path, newSize);
      await exporter?.resize({ ...target(volume), size: newSize });
      return undefined;
    },

    async createSnapshot(snapshot, volume) {
      await mustExist(volumeFile(volume.id), `volume ${volume.id}`);
      await ensureSpace(reflink ? 0 : volume.size);
      const path = snapshotFile(snapshot.id);
      await createFile(path, () => copyVolumeFile(volumeFile(volume.id), path, copyOpts()));
      return undefined;
    },

    async deleteSnapshot(snapshot) {
      await unlink(snapshotFile(snapshot.id)).catch((err) => {
        if (!hasCode(err, 'ENOENT')) throw err;
      });
    },

    async stats(): Promise<BackendStats> {
      const fs = await statfs(config.path);
      let provisioned = 0;
      let allocated = 0;
      let volumes = 0;
      let snapshots = 0;
      for (const name of await readdir(config.path)) {
        const isVolume = name.startsWith('volume-');
        if (!isVolume && !name.startsWith('snapshot-')) continue;
        const s = await stat(join(config.path, name)).catch(() => null);
        if (!s) continue;
        provisioned += s.size;
        allocated += s.blocks * 512;
        if (isVolume) volumes++;
        else snapshots++;
      }
      return {
        totalBytes: fs.blocks * fs.bsize,
        freeBytes: fs.bavail * fs.bsize,
        provisionedBytes: provisioned,
        allocatedBytes: allocated,
        thin: !thick,
        volumeCount: volumes,
        snapshotCount: snapshots,
      };
    },

    async exportVolume(volume, connector, mode): Promise<ConnectionInfo> {
      validateConnector(connector);
      const path = volumeFile(volume.id);
      await mustExist(path, `volume ${volume.id}`);
      if (exporter) return exporter.export(target(volume), connector, mode);
      return { protocol: 'local', data: { path, host, readOnly: mode === 'ro' } };
    },

    async unexportVolume(volume, info, connector) {
      // A local export is only a path: nothing to undo. A network export is undone whatever the
      // info says: recovery of an interrupted connect passes none.
      if (exporter) await exporter.unexport(target(volume), info, connector);
    },

    async inventory() {
      const found: Inventory = { volumes: new Map(), snapshots: new Map() };
      for (const name of await readdir(config.path)) {
        const [kind, prefix] = name.startsWith('volume-')
          ? (['volumes', 'volume-'] as const)
          : (['snapshots', 'snapshot-'] as const);
        if (!name.startsWith(prefix)) continue;
        const s = await stat(join(config.path, name)).catch(() => null);
        if (s) found[kind].set(name.slice(prefix.length), s.size);
      }
      return found;
    },

    async close() {
      await exporter?.close();
    },
  };
}
