/**
 * The CSI Node service: attaches a volume from the connection ControllerPublishVolume put in
 * `publish_context`, formats it only when it is blank, mounts it at the staging path (or, for
 * block access, bind-mounts the device onto a file there), and bind-mounts that to each publish
 * target. Everything a later call needs is kept in a staging record per volume under
 * `deps.stateDir`, so Unpublish, Unstage, stats and expansion work after a plugin restart.
 */
import { lstat, mkdir, open, rmdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import type { AttachedDevice, Connector } from '../connectors/spi.js';
import { LockManager } from '../core/locks.js';
import type { ConnectionInfo } from '../core/records.js';
import { errorMessage, invalidArgument } from '../util/errors.js';
import { hasCode } from '../util/fsx.js';
import { grpcError, toGrpcError } from './errors.js';
import {
  allowsManyTargets,
  type Capability,
  isReaderOnly,
  parseCapability,
  sameCapability,
} from './node/capability.js';
import { formatIfBlank, growFilesystem } from './node/format.js';
import { bindMount, mountDevice, unmount } from './node/mount.js';
import { isReadOnly, type MountEntry, mountAt, readMounts, sameSource } from './node/mountinfo.js';
import { checkPath, checkVolumeId, fileNameFor } from './node/paths.js';
import { decodePublishContext } from './node/publish-context.js';
import { type StagedVolume, StagingRecords } from './node/records.js';
import { blockDeviceSize, fsUsage } from './node/stats.js';
import { attachReadOnlyView, detachView, isViewOf, refreshView } from './node/views.js';
import type { NodeDeps } from './node-deps.js';
import type {
  NodeExpandVolumeRequest,
  NodeExpandVolumeResponse,
  NodeGetCapabilitiesResponse,
  NodeGetInfoResponse,
  NodeGetVolumeStatsRequest,
  NodeGetVolumeStatsResponse,
  NodePublishVolumeRequest,
  NodeStageVolumeRequest,
  NodeUnpublishVolumeRequest,
  NodeUnstageVolumeRequest,
  ServiceHandlers,
  VolumeUsage,
} from './proto.js';

/**
 * How long a call waits for another call on the same volume before it answers ABORTED (the
 * spec's "operation pending for volume"). Only one node plugin runs per node, so the lock is
 * this process's: a lock file would outlive a container killed in its own pid namespace.
 */
const VOLUME_LOCK_WAIT_MS = 10_000;

type Empty = Record<string, never>;

/** The grpc-js handlers of `csi.v1.Node`. */
export function createNodeService(deps: NodeDeps): ServiceHandlers {
  const node = new NodeService(deps);
  const handlers = {
    NodeStageVolume: (r: NodeStageVolumeRequest) => node.stage(r),
    NodeUnstageVolume: (r: NodeUnstageVolumeRequest) => node.unstage(r),
    NodePublishVolume: (r: NodePublishVolumeRequest) => node.publish(r),
    NodeUnpublishVolume: (r: NodeUnpublishVolumeRequest) => node.unpublish(r),
    NodeGetVolumeStats: (r: NodeGetVolumeStatsRequest) => node.stats(r),
    NodeExpandVolume: (r: NodeExpandVolumeRequest) => node.expand(r),
    NodeGetCapabilities: async () => node.capabilities(),
    NodeGetInfo: async () => node.info(),
  };
  const out: ServiceHandlers = {};
  for (const [name, fn] of Object.entries(handlers)) {
    out[name] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const started = performance.now();
      (fn as (r: unknown) => Promise<unknown>)(call.request).then(
        (res) => {
          deps.logger.debug({ rpc: name, ms: Math.round(performance.now() - started) }, 'node call done');
          callback(null, res);
        },
        (err: unknown) => {
          const e = toGrpcError(err);
          // Only ids, paths and the error: requests can carry secrets and mount flags.
          deps.logger.warn(
            { rpc: name, ...describeRequest(call.request), code: status[e.code], error: e.details },
            'node call failed',
          );
          callback(e);
        },
      );
    };
  }
  return out;
}

function describeRequest(req: unknown): Record<string, unknown> {
  const r = (req ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ['volume_id', 'staging_target_path', 'target_path', 'volume_path'])
    if (typeof r[k] === 'string' && r[k]) out[k] = r[k];
  return out;
}

class NodeService {
  private readonly records: StagingRecords;
  private readonly locks = new LockManager({ dir: null, timeoutMs: VOLUME_LOCK_WAIT_MS });

  constructor(private readonly deps: NodeDeps) {
    this.records = new StagingRecords(deps.stateDir);
  }

  private withVolume<T>(volumeId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.withLocks([`csi-node-volume:${volumeId}`], fn);
  }

  private connector(info: ConnectionInfo): Connector {
    try {
      return this.deps.connector(info.protocol);
    } catch (err) {
      throw invalidArgument(`this node can't attach ${info.protocol} connections: ${errorMessage(err)}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // NodeStageVolume / NodeUnstageVolume
  // -------------------------------------------------------------------------------------------

  async stage(req: NodeStageVolumeRequest): Promise<Empty> {
    const volumeId = checkVolumeId(req.volume_id);
    const stagingPath = checkPath('staging_target_path', req.staging_target_path);
    const cap = parseCapability('volume_capability', req.volume_capability);
    const info = decodePublishContext(req.publish_context);
    checkHost(info, this.deps.nodeId);
    const connector = this.connector(info);

    return this.withVolume(volumeId, async () => {
      let rec = await this.records.get(volumeId);
      if (rec && rec.phase === 'staged') {
        if (rec.stagingPath !== stagingPath)
          throw grpcError(
            status.FAILED_PRECONDITION,
            `volume ${volumeId} is already staged at ${rec.stagingPath}; unstage it there first`,
          );
        if (!sameCapability(rec.capability, cap))
          throw grpcError(
            status.ALREADY_EXISTS,
            `volume ${volumeId} is already staged at ${stagingPath} with another volume_capability`,
          );
        if (await this.stagingIntact(rec, connector)) return {};
        this.deps.logger.warn(
          { volumeId, stagingPath },
          'staged volume lost its device or mount: staging again',
        );
      } else if (rec && (rec.stagingPath !== stagingPath || !sameCapability(rec.capability, cap))) {
        // An interrupted stage with other arguments: undo what it did before starting over.
        await this.undoStage(rec, this.connector(rec.info));
        rec = null;
      }

      const readOnly = isReaderOnly(cap.mode) || info.data.readOnly === true;
      // Only an attempt that was interrupted mid-attach may have left a device nobody recorded.
      const interruptedAttach = rec?.phase === 'attaching';
      if (rec === null) {
        rec = {
          version: 1,
          volumeId,
          stagingPath,
          phase: 'attaching',
          capability: cap,
          readOnly,
          info,
          device: null,
          fsType: null,
          targets: {},
          updatedAt: '',
        };
        await this.records.put(rec);
      }

      // Attach, or find the device an earlier (interrupted or lost) attempt made.
      if (rec.device !== null) {
        const devices = await connector.findDevices(rec.info);
        if (!devices.some((d) => d.path === rec!.device)) rec.device = null;
      }
      if (rec.device === null) {
        // Not for a fresh record: a device detached a moment ago can linger (the kernel clears
        // it when udev closes it) and must not be taken for one an interrupted attach made.
        const found = interruptedAttach ? await connector.findDevices(info) : [];
        const device = found[0] ?? (await connector.attach(info, { readOnly }));
        rec = { ...rec, device: device.path, phase: 'attached' };
        await this.records.put(rec);
      }
      const device = rec.device!;

      await mkdir(stagingPath, { recursive: true, mode: 0o750 });
      const mounts = await readMounts();
      if (cap.access === 'block') {
        const file = blockFile(rec);
        const existing = mountAt(mounts, file);
        if (existing === null || !(await isDeviceAt(file, device))) {
          if (existing !== null) await unmount(this.deps.runner, file);
          await ensureFile(file);
          await bindMount(this.deps.runner, device, file, false);
        }
      } else {
        const existing = mountAt(mounts, stagingPath);
        if (existing !== null && existing.source !== device)
          throw grpcError(
            status.FAILED_PRECONDITION,
            `staging_target_path ${stagingPath} already has ${existing.source} mounted`,
          );
        if (existing === null) {
          const { fsType, formatted } = await formatIfBlank(
            this.deps.runner,
            device,
            cap.fsType,
            this.deps.defaultFsType,
            { readOnly },
          );
          const options = [...cap.mountFlags];
          if (readOnly && !options.includes('ro')) options.push('ro');
          // A clone or snapshot of an xfs volume has its source's UUID; xfs refuses a second
          // mount of a UUID unless told not to check.
          if (fsType === 'xfs' && !options.includes('nouuid')) options.push('nouuid');
          await mountDevice(this.deps.runner, device, stagingPath, fsType, options);
          rec = { ...rec, fsType };
          if (formatted) this.deps.logger.info({ volumeId, device, fsType }, 'formatted a blank volume');
        } else if (rec.fsType === null) {
          rec = { ...rec, fsType: fsTypeOf(existing) };
        }
      }
      await this.records.put({ ...rec, phase: 'staged' });
      this.deps.logger.info({ volumeId, stagingPath, device }, 'volume staged');
      return {};
    });
  }

  /** True when a staged volume still has its device and its staging mount. */
  private async stagingIntact(rec: StagedVolume, connector: Connector): Promise<boolean> {
    if (rec.device === null) return false;
    const devices = await connector.findDevices(rec.info);
    if (!devices.some((d) => d.path === rec.device)) return false;
    const mounts = await readMounts();
    if (rec.capability.access === 'block') {
      const file = blockFile(rec);
      return mountAt(mounts, file) !== null && (await isDeviceAt(file, rec.device));
    }
    return mountAt(mounts, rec.stagingPath)?.source === rec.device;
  }

  async unstage(req: NodeUnstageVolumeRequest): Promise<Empty> {
    const volumeId = checkVolumeId(req.volume_id);
    const stagingPath = checkPath('staging_target_path', req.staging_target_path);
    return this.withVolume(volumeId, async () => {
      const rec = await this.records.get(volumeId);
      if (rec === null) {
        // Nothing recorded (never staged, or already unstaged): leave no mount of it behind.
        const file = join(stagingPath, fileNameFor(volumeId));
        const mounts = await readMounts();
        if (mountAt(mounts, file) !== null || mountAt(mounts, stagingPath) !== null) {
          this.deps.logger.warn(
            { volumeId, stagingPath },
            'unmounting a staging path with no staging record',
          );
          await unmount(this.deps.runner, file);
          await unmount(this.deps.runner, stagingPath);
        }
        await removeFile(file);
        return {};
      }
      if (rec.stagingPath !== stagingPath) return {}; // not staged there: the spec's 0 OK
      const mounts = await readMounts();
      const published = Object.keys(rec.targets).filter((t) => mountAt(mounts, t) !== null);
      if (published.length > 0)
        throw grpcError(
          status.FAILED_PRECONDITION,
          `volume ${volumeId} is still published at ${published.join(', ')}; unpublish it first`,
        );
      await this.undoStage(rec, this.connector(rec.info));
      this.deps.logger.info({ volumeId, stagingPath }, 'volume unstaged');
      return {};
    });
  }

  /** Unmounts and detaches what a (possibly partial) stage made, then forgets it. */
  private async undoStage(rec: StagedVolume, connector: Connector): Promise<void> {
    for (const entry of Object.values(rec.targets))
      if (entry.view !== null && rec.device !== null)
        await detachView(this.deps.runner, entry.view, rec.device);
    if (rec.capability.access === 'block') {
      const file = blockFile(rec);
      await unmount(this.deps.runner, file);
      await removeFile(file);
    } else {
      await unmount(this.deps.runner, rec.stagingPath);
    }
    // The connector checks the device is still this connection's before it detaches it, and
    // refuses while something still has it mounted or open.
    const devices: AttachedDevice[] =
      rec.device !== null
        ? [{ path: rec.device, type: 'block' }]
        : rec.phase === 'attaching'
          ? await connector.findDevices(rec.info)
          : [];
    for (const device of devices) await connector.detach(rec.info, device, { force: false });
    await this.records.remove(rec.volumeId);
  }

  // -------------------------------------------------------------------------------------------
  // NodePublishVolume / NodeUnpublishVolume
  // -------------------------------------------------------------------------------------------

  async publish(req: NodePublishVolumeRequest): Promise<Empty> {
    const volumeId = checkVolumeId(req.volume_id);
    const targetPath = checkPath('target_path', req.target_path);
    const cap = parseCapability('volume_capability', req.volume_capability);
    if (!req.staging_target_path)
      throw grpcError(
        status.FAILED_PRECONDITION,
        'staging_target_path is required: this plugin has STAGE_UNSTAGE_VOLUME; call NodeStageVolume first',
      );
    const stagingPath = checkPath('staging_target_path', req.staging_target_path);
    if (targetPath === stagingPath || targetPath.startsWith(`${stagingPath}/`))
      throw invalidArgument('target_path must not be the staging_target_path or inside it');
    const readonly = req.readonly === true;

    return this.withVolume(volumeId, async () => {
      let rec = await this.records.get(volumeId);
      if (rec === null || rec.phase !== 'staged' || rec.stagingPath !== stagingPath)
        throw grpcError(
          status.FAILED_PRECONDITION,
          `volume ${volumeId} is not staged at ${stagingPath}; call NodeStageVolume first`,
        );
      const device = rec.device!;
      const known = rec.targets[targetPath];
      if (known) {
        if (known.readonly !== readonly || !sameCapability(known.capability, cap))
          throw grpcError(
            status.ALREADY_EXISTS,
            `volume ${volumeId} is already published at ${targetPath} with another volume_capability or readonly`,
          );
      } else {
        const staged = rec.capability;
        if (
          cap.access !== staged.access ||
          cap.mode !== staged.mode ||
          (cap.fsType !== null && cap.fsType !== rec.fsType)
        )
          throw grpcError(
            status.FAILED_PRECONDITION,
            `volume_capability differs from the one volume ${volumeId} was staged with (${describeCapability(staged, rec.fsType)})`,
          );
        const others = Object.keys(rec.targets);
        if (others.length > 0 && !allowsManyTargets(cap.mode))
          throw grpcError(
            status.FAILED_PRECONDITION,
            `volume ${volumeId} is already published at ${others.join(', ')} and ${cap.mode} allows one target`,
          );
      }
      const ro = readonly || isReaderOnly(cap.mode);
      if (!ro && rec.readOnly)
        throw grpcError(
          status.FAILED_PRECONDITION,
          `volume ${volumeId} is attached read-only on this node; it can't be published writable`,
        );

      const source = cap.access === 'block' ? blockFile(rec) : stagingPath;
      let mounts = await readMounts();
      const sourceMount = mountAt(mounts, source);
      if (sourceMount === null)
        throw grpcError(
          status.FAILED_PRECONDITION,
          `the staging mount of volume ${volumeId} at ${source} is gone; unstage and stage it again`,
        );
      // A read-only block publish of a writable device needs a read-only device (views.ts).
      const wantsView = cap.access === 'block' && ro && !rec.readOnly;
      let view = known?.view ?? null;
      if (view !== null && !(await isViewOf(view, device))) view = null;

      const existing = mountAt(mounts, targetPath);
      if (existing !== null) {
        if (
          known &&
          isReadOnly(existing) === ro &&
          (wantsView
            ? view !== null && (await isDeviceAt(targetPath, view))
            : sameSource(existing, sourceMount))
        )
          return {};
        if (!known && !sameSource(existing, sourceMount))
          throw grpcError(
            status.FAILED_PRECONDITION,
            `target_path ${targetPath} already has something mounted`,
          );
        await unmount(this.deps.runner, targetPath);
        mounts = await readMounts();
      }

      // Record the target before mounting it, so a crash in between leaves nothing unknown.
      if (wantsView && view === null) {
        view = await attachReadOnlyView(this.deps.runner, device);
      }
      rec = { ...rec, targets: { ...rec.targets, [targetPath]: { readonly, capability: cap, view } } };
      await this.records.put(rec);

      if (cap.access === 'block') {
        const st = await lstat(targetPath).catch(() => null);
        if (st?.isDirectory())
          throw grpcError(status.FAILED_PRECONDITION, `target_path ${targetPath} is a directory, not a file`);
        await ensureFile(targetPath);
        await bindMount(this.deps.runner, view ?? source, targetPath, ro);
      } else {
        const st = await lstat(targetPath).catch(() => null);
        if (st && !st.isDirectory())
          throw grpcError(status.FAILED_PRECONDITION, `target_path ${targetPath} is not a directory`);
        await mkdir(targetPath, { recursive: true, mode: 0o750 });
        await bindMount(this.deps.runner, source, targetPath, ro);
      }
      this.deps.logger.info({ volumeId, targetPath, readonly: ro }, 'volume published');
      return {};
    });
  }

  async unpublish(req: NodeUnpublishVolumeRequest): Promise<Empty> {
    const volumeId = checkVolumeId(req.volume_id);
    const targetPath = checkPath('target_path', req.target_path);
    return this.withVolume(volumeId, async () => {
      const rec = await this.records.get(volumeId);
      const entry = rec?.targets[targetPath];
      await unmount(this.deps.runner, targetPath);
      if (entry?.view && rec?.device) await detachView(this.deps.runner, entry.view, rec.device);
      // The spec: the SP MUST delete the file or directory it created at target_path.
      const st = await lstat(targetPath).catch((err: unknown) => {
        if (hasCode(err, 'ENOENT')) return null;
        throw err;
      });
      if (st?.isDirectory()) {
        await rmdir(targetPath).catch((err: unknown) => {
          if (hasCode(err, 'ENOTEMPTY') || hasCode(err, 'EEXIST'))
            throw grpcError(
              status.FAILED_PRECONDITION,
              `target_path ${targetPath} is not mounted but not empty; it was left as it is`,
            );
          if (!hasCode(err, 'ENOENT')) throw err;
        });
      } else if (st) {
        await removeFile(targetPath);
      }
      if (rec && entry) {
        const { [targetPath]: _gone, ...targets } = rec.targets;
        await this.records.put({ ...rec, targets });
      }
      this.deps.logger.info({ volumeId, targetPath }, 'volume unpublished');
      return {};
    });
  }

  // -------------------------------------------------------------------------------------------
  // NodeGetVolumeStats / NodeExpandVolume
  // -------------------------------------------------------------------------------------------

  async stats(req: NodeGetVolumeStatsRequest): Promise<NodeGetVolumeStatsResponse> {
    const volumeId = checkVolumeId(req.volume_id);
    const volumePath = checkPath('volume_path', req.volume_path);
    if (req.staging_target_path) checkPath('staging_target_path', req.staging_target_path);
    const st = await stat(volumePath).catch((err: unknown) => {
      if (hasCode(err, 'ENOENT')) return null;
      throw err;
    });
    if (st === null) throw grpcError(status.NOT_FOUND, `volume_path ${volumePath} does not exist`);
    const rec = await this.records.get(volumeId);
    const role = rec ? roleOf(rec, volumePath) : null;
    const notFound = () =>
      grpcError(status.NOT_FOUND, `volume ${volumeId} is neither staged nor published at ${volumePath}`);
    const abnormal = (message: string): NodeGetVolumeStatsResponse => ({
      usage: [],
      volume_condition: { abnormal: true, message },
    });

    const deviceGone = rec ? await this.deviceGone(rec) : null;
    // A block volume's staging path is a directory holding its device file.
    const devicePath =
      rec?.capability.access === 'block' && volumePath === rec.stagingPath ? blockFile(rec) : volumePath;
    if (devicePath !== volumePath || st.isBlockDevice()) {
      const size = await blockDeviceSize(devicePath);
      if (size === null || size === 0) return abnormal(`the block device at ${devicePath} is gone`);
      const usage: VolumeUsage[] = [{ unit: 'BYTES', total: String(size), available: 0, used: 0 }];
      return {
        usage,
        volume_condition: deviceGone
          ? { abnormal: true, message: deviceGone }
          : { abnormal: false, message: `block device, ${size} bytes` },
      };
    }
    if (!st.isDirectory()) {
      if (role === null) throw notFound();
      return abnormal(`${volumePath} no longer holds the volume's block device`);
    }
    const mount = mountAt(await readMounts(), volumePath);
    if (mount === null) {
      if (role === null) throw notFound();
      return abnormal(`${volumePath} is not mounted any more`);
    }
    const u = await fsUsage(volumePath);
    const usage: VolumeUsage[] = [
      { unit: 'BYTES', ...u.bytes },
      { unit: 'INODES', ...u.inodes },
    ];
    let condition = { abnormal: false, message: `mounted ${isReadOnly(mount) ? 'read-only' : 'read-write'}` };
    if (deviceGone) condition = { abnormal: true, message: deviceGone };
    else if (rec && role !== null && isReadOnly(mount) && !this.expectsReadOnly(rec, volumePath))
      condition = {
        abnormal: true,
        message: `${volumePath} is read-only but was mounted read-write: the file system may have hit errors`,
      };
    return { usage, volume_condition: condition };
  }

  private expectsReadOnly(rec: StagedVolume, path: string): boolean {
    if (rec.readOnly) return true;
    const target = rec.targets[path];
    return target ? target.readonly || isReaderOnly(target.capability.mode) : false;
  }

  /** Why the staged device is gone, or null when it is there. */
  private async deviceGone(rec: StagedVolume): Promise<string | null> {
    if (rec.device === null) return 'the volume has no device on this node';
    const devices = await Promise.resolve()
      .then(() => this.connector(rec.info).findDevices(rec.info))
      .catch(() => null);
    if (devices === null || devices.some((d) => d.path === rec.device)) return null;
    return `the device ${rec.device} is no longer attached to the volume`;
  }

  async expand(req: NodeExpandVolumeRequest): Promise<NodeExpandVolumeResponse> {
    const volumeId = checkVolumeId(req.volume_id);
    const volumePath = checkPath('volume_path', req.volume_path);
    if (req.staging_target_path) checkPath('staging_target_path', req.staging_target_path);
    const cap = req.volume_capability ? parseCapability('volume_capability', req.volume_capability) : null;
    const required = int64('capacity_range.required_bytes', req.capacity_range?.required_bytes);
    const limit = int64('capacity_range.limit_bytes', req.capacity_range?.limit_bytes);
    if (limit > 0n && required > limit)
      throw grpcError(status.OUT_OF_RANGE, 'capacity_range.required_bytes is larger than limit_bytes');

    return this.withVolume(volumeId, async () => {
      const exists = await stat(volumePath).then(
        () => true,
        () => false,
      );
      if (!exists) throw grpcError(status.NOT_FOUND, `volume_path ${volumePath} does not exist`);
      const rec = await this.records.get(volumeId);
      if (rec === null || rec.phase !== 'staged' || roleOf(rec, volumePath) === null)
        throw grpcError(
          status.NOT_FOUND,
          `volume ${volumeId} is neither staged nor published at ${volumePath} on this node`,
        );
      if (cap && cap.access !== rec.capability.access)
        throw invalidArgument(
          `volume_capability has ${cap.access} access; the volume is staged for ${rec.capability.access}`,
        );
      const device = rec.device!;
      const size = await this.connector(rec.info).extend(rec.info, { path: device, type: 'block' });
      if (limit > 0n && BigInt(size) > limit)
        throw grpcError(
          status.OUT_OF_RANGE,
          `the device is ${size} bytes, more than capacity_range.limit_bytes ${limit}`,
        );
      if (BigInt(size) < required)
        throw grpcError(
          status.UNAVAILABLE,
          `the device shows ${size} bytes, less than the ${required} required; expand the volume (ControllerExpandVolume) first, then retry`,
        );
      for (const entry of Object.values(rec.targets))
        if (entry.view !== null) await refreshView(this.deps.runner, entry.view, device);
      if (rec.capability.access === 'mount' && rec.fsType !== null) {
        if (rec.readOnly)
          throw grpcError(
            status.FAILED_PRECONDITION,
            `volume ${volumeId} is mounted read-only; its ${rec.fsType} file system can't grow`,
          );
        await growFilesystem(this.deps.runner, rec.fsType, device, rec.stagingPath);
      }
      this.deps.logger.info({ volumeId, size }, 'volume expanded on the node');
      return { capacity_bytes: String(size) };
    });
  }

  // -------------------------------------------------------------------------------------------
  // NodeGetCapabilities / NodeGetInfo
  // -------------------------------------------------------------------------------------------

  capabilities(): NodeGetCapabilitiesResponse {
    return {
      capabilities: (
        [
          'STAGE_UNSTAGE_VOLUME',
          'GET_VOLUME_STATS',
          'EXPAND_VOLUME',
          'VOLUME_CONDITION',
          'SINGLE_NODE_MULTI_WRITER',
        ] as const
      ).map((type) => ({ rpc: { type } })),
    };
  }

  info(): NodeGetInfoResponse {
    const segments = this.deps.topology;
    return {
      node_id: this.deps.nodeId,
      max_volumes_per_node: String(Math.max(0, Math.floor(this.deps.maxVolumesPerNode))),
      accessible_topology: Object.keys(segments).length > 0 ? { segments } : null,
    };
  }
}

/** Where a block volume's device is bind-mounted inside its staging directory. */
function blockFile(rec: StagedVolume): string {
  return join(rec.stagingPath, fileNameFor(rec.volumeId));
}

/** What `path` is to a staged volume: its staging path, its block device file, a target; or null. */
function roleOf(rec: StagedVolume, path: string): 'staging' | 'target' | null {
  if (path === rec.stagingPath || (rec.capability.access === 'block' && path === blockFile(rec)))
    return 'staging';
  return path in rec.targets ? 'target' : null;
}

function fsTypeOf(m: MountEntry): StagedVolume['fsType'] {
  return m.fsType === 'ext4' || m.fsType === 'xfs' || m.fsType === 'btrfs' ? m.fsType : null;
}

function describeCapability(c: Capability, fsType: string | null): string {
  return c.access === 'block' ? `block, ${c.mode}` : `mount ${fsType ?? c.fsType ?? ''}, ${c.mode}`;
}

/** A local-protocol connection names the host it was exported to: it must be this one. */
function checkHost(info: ConnectionInfo, nodeId: string): void {
  const host = info.data.host;
  if (typeof host === 'string' && host !== nodeId && host !== hostname())
    throw grpcError(
      status.FAILED_PRECONDITION,
      `the volume was exported to host ${host}, not to this node (${nodeId})`,
    );
}

/** True when `path` is (shows) the block device `device`. */
async function isDeviceAt(path: string, device: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    stat(path, { bigint: true }).catch(() => null),
    stat(device, { bigint: true }).catch(() => null),
  ]);
  return a !== null && b !== null && a.isBlockDevice() && b.isBlockDevice() && a.rdev === b.rdev;
}

async function ensureFile(path: string): Promise<void> {
  const fh = await open(path, 'a', 0o640);
  await fh.close();
}

async function removeFile(path: string): Promise<void> {
  await unlink(path).catch((err: unknown) => {
    if (!hasCode(err, 'ENOENT')) throw err;
  });
}

function int64(field: string, value: string | number | undefined): bigint {
  if (value === undefined || value === '' || value === 0) return 0n;
  const s = String(value);
  if (!/^\d+$/.test(s)) throw invalidArgument(`${field} must not be negative`);
  return BigInt(s);
}
