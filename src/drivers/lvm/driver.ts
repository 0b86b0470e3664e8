import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { ConnectionInfo } from '../../core/records.js';
import { connectorCheck, createExporter, type Exporter } from '../../exports/index.js';
import { isCowSnapshot, isThinPool, type LvInfo } from '../../parse/lvm.js';
import { ErrorCode, invalidArgument, isCairnError, notFound } from '../../util/errors.js';
import type { BackendStats, Capabilities, Driver, DriverContext, Inventory, VolumeRef } from '../spi.js';
import { type LvmBackend, lvmBackend, type Provisioning } from './backend.js';
import type { LvmConfig } from './config.js';
import { CLONE, idIn, lvName, lvNameProblem, REVERT, SNAPSHOT, VOLUME } from './names.js';
import { thickProvisioning } from './thick.js';
import { thinProvisioning } from './thin.js';

const volName = (id: string) => lvName(VOLUME, id);
const snapName = (id: string) => lvName(SNAPSHOT, id);

/**
 * Creates an `lvm` driver: volumes are the LVs `volume-<id>` of one volume group, thin (in a
 * thin pool) or thick, snapshots the LVs `_snapshot-<id>`. Everything goes through the LVM
 * tools, with reports read as JSON. Without an `export` section, volumes are handed out on this
 * host only, as their own device (`local` protocol).
 */
export async function createLvmDriver(config: LvmConfig, ctx: DriverContext): Promise<Driver> {
  if (config.lvmConf && !(await stat(config.lvmConf).catch(() => null))?.isFile())
    throw invalidArgument(`lvmConf: ${config.lvmConf} is not a file (backend ${ctx.backendName})`);
  const vg = config.volumeGroup;
  const b = lvmBackend(
    { runner: ctx.runner, lvmConf: config.lvmConf, timeoutMs: config.timeoutMs },
    vg,
    ctx.backendName,
  );
  const report = await b.report(true).catch((err) => {
    if (isCairnError(err, ErrorCode.NotFound))
      throw invalidArgument(
        `volumeGroup: volume group "${vg}" does not exist (backend ${ctx.backendName}); create it with vgcreate`,
        { cause: err },
      );
    throw err;
  });
  if (config.thinPool) checkPool(report.lvs, config.thinPool, vg, ctx.backendName);
  const p: Provisioning = config.thinPool ? thinProvisioning(b, config.thinPool) : thickProvisioning(b);
  const exporter: Exporter | undefined = config.export ? await createExporter(config.export, ctx) : undefined;
  const host = hostname();
  const capabilities: Capabilities = {
    thin: p.thin,
    snapshots: true,
    cloneSpeed: p.thin ? 'instant' : 'copy',
    revertToSnapshot: true,
    manageExisting: true,
    multiAttach: false,
    onlineExtend: true,
    protocols: exporter ? [exporter.protocol] : ['local'],
    // LVs are whole extents.
    sizeAlignment: report.vg!.extentSize,
  };
  return lvmDriver({ b, p, exporter, host, capabilities, ctx });
}

function checkPool(lvs: LvInfo[], pool: string, vg: string, backend: string): void {
  const found = lvs.find((l) => l.name === pool);
  if (!found || !isThinPool(found)) {
    throw invalidArgument(
      `thinPool: ${found ? `${vg}/${pool} is a ${found.layout.join(',')} LV, not a thin pool` : `volume group "${vg}" has no thin pool "${pool}"`} (backend ${backend}); create it with lvcreate --type thin-pool`,
    );
  }
}

interface Parts {
  b: LvmBackend;
  p: Provisioning;
  exporter: Exporter | undefined;
  host: string;
  capabilities: Capabilities;
  ctx: DriverContext;
}

function lvmDriver({ b, p, exporter, host, capabilities, ctx }: Parts): Driver {
  const target = (volume: VolumeRef, size = volume.size) => ({
    volumeId: volume.id,
    path: b.path(volName(volume.id)),
    size,
  });

  /**
   * Names whose create found an LV already there (ALREADY_EXISTS: someone else's). Cairn cleans
   * up after a failed create by deleting the volume, and that delete must leave such an LV alone.
   */
  const foreign = new Set<string>();
  async function creating(lv: string, make: () => Promise<unknown>): Promise<undefined> {
    try {
      await make();
    } catch (err) {
      if (isCairnError(err, ErrorCode.AlreadyExists)) foreign.add(lv);
      throw err;
    }
    return undefined;
  }

  /** An LV that `manageVolume` may adopt: a valid name, not one of Cairn's snapshots or temporaries. */
  function checkReference(reference: string): void {
    const problem = lvNameProblem(reference);
    const ours = [SNAPSHOT, CLONE, REVERT].find((x) => reference.startsWith(x));
    if (problem || ours) {
      throw invalidArgument(
        `reference: "${reference}" is not an LV name in volume group ${b.vg} that can be adopted (${problem ?? `"${ours}" LVs are Cairn's own`})`,
      );
    }
  }

  const validateConnector = connectorCheck(exporter, ctx.backendName, 'lvm');

  /** This backend's volume and snapshot LVs; `fresh` for inventory, which recovery trusts. */
  async function mine(fresh = false) {
    const r = await b.report(fresh);
    const volumes: LvInfo[] = [];
    const snapshots: LvInfo[] = [];
    for (const lv of r.lvs) {
      if (!p.owns(lv)) continue;
      if (idIn(VOLUME, lv.name) && !isCowSnapshot(lv)) volumes.push(lv);
      else if (idIn(SNAPSHOT, lv.name)) snapshots.push(lv);
    }
    return { r, volumes, snapshots };
  }

  return {
    capabilities,
    validateConnector,

    async createVolume(volume) {
      const lv = volName(volume.id);
      return creating(lv, () => p.createVolume(lv, volume.size));
    },

    async cloneVolume(volume, source, onProgress) {
      const lv = volName(volume.id);
      const src = { lv: volName(source.id), size: source.size, isSnapshot: false };
      return creating(lv, () => p.copyOf(lv, volume.size, src, onProgress));
    },

    async createVolumeFromSnapshot(volume, snapshot, onProgress) {
      const lv = volName(volume.id);
      const src = { lv: snapName(snapshot.id), size: snapshot.size, isSnapshot: true };
      return creating(lv, () => p.copyOf(lv, volume.size, src, onProgress));
    },

    async deleteVolume(volume) {
      const lv = volName(volume.id);
      if (foreign.delete(lv)) return; // the clean-up of a refused create: not ours to remove
      await exporter?.remove(volume.id);
      await p.removeVolume(lv);
    },

    async extendVolume(volume, newSize) {
      await p.extend(volName(volume.id), volume.size, newSize);
      await exporter?.resize(target(volume, newSize));
      return undefined;
    },

    async createSnapshot(snapshot, volume) {
      await p.createSnapshot(snapName(snapshot.id), volName(volume.id), volume.size);
      return undefined;
    },

    async deleteSnapshot(snapshot) {
      await b.remove(snapName(snapshot.id));
    },

    async revertToSnapshot(volume, snapshot) {
      await p.revert(
        { lv: volName(volume.id), id: volume.id, size: volume.size },
        { lv: snapName(snapshot.id), size: snapshot.size },
      );
      return undefined;
    },

    volumeIdOf(reference) {
      return idIn(VOLUME, reference);
    },

    async manageVolume(volume, reference) {
      checkReference(reference);
      const found = await b.find(reference);
      if (!found)
        throw notFound(
          `reference: no LV "${reference}" in volume group ${b.vg} (backend ${ctx.backendName})`,
        );
      const why = p.unadoptable(found);
      if (why) throw invalidArgument(`reference: ${b.vg}/${reference} cannot be adopted: it is ${why}`);
      const lv = volName(volume.id);
      await b.change(['lvrename', b.vg, reference, lv], `rename ${b.vg}/${reference} to ${lv}`);
      try {
        // A thin snapshot made outside Cairn carries the activation-skip flag: volumes do not.
        if (!found.active || found.skipActivation)
          await b.change(
            ['lvchange', '--setactivationskip', 'n', '--activate', 'y', `${b.vg}/${lv}`],
            `LV ${b.vg}/${lv}`,
          );
      } catch (err) {
        await b.change(['lvrename', b.vg, lv, reference], `rename ${lv} back`).catch(() => {});
        throw err;
      }
      return { size: found.size };
    },

    async unmanageVolume(volume) {
      return volName(volume.id);
    },

    async stats(): Promise<BackendStats> {
      const { r, volumes, snapshots } = await mine();
      const space = p.space(r, [...volumes, ...snapshots]);
      const provisioned =
        volumes.reduce((sum, l) => sum + l.size, 0) +
        snapshots.reduce((sum, l) => sum + p.snapshotSize(l), 0);
      return {
        totalBytes: space.total,
        freeBytes: space.free,
        provisionedBytes: provisioned,
        allocatedBytes: space.allocated,
        thin: p.thin,
        volumeCount: volumes.length,
        snapshotCount: snapshots.length,
      };
    },

    async exportVolume(volume, connector, mode): Promise<ConnectionInfo> {
      validateConnector(connector);
      const path = await b.activate(volName(volume.id));
      if (exporter) return exporter.export(target(volume), connector, mode);
      return { protocol: 'local', data: { path, host, readOnly: mode === 'ro' } };
    },

    async unexportVolume(volume, info, connector) {
      // A local export is only a path: nothing to undo on the backend.
      if (exporter && info.protocol === exporter.protocol)
        await exporter.unexport(target(volume), info, connector);
    },

    async inventory() {
      const { volumes, snapshots } = await mine(true);
      const found: Inventory = { volumes: new Map(), snapshots: new Map() };
      for (const lv of volumes) found.volumes.set(idIn(VOLUME, lv.name)!, lv.size);
      for (const lv of snapshots) found.snapshots.set(idIn(SNAPSHOT, lv.name)!, p.snapshotSize(lv));
      return found;
    },

    async close() {
      await exporter?.close();
    },
  };
}
