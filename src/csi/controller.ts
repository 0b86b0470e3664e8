/**
 * The CSI Controller service over a Cairn context: volumes and snapshots are Cairn's, a CSI
 * volume_id or snapshot_id is the Cairn id, and a CSI name is the Cairn name (mapped when it
 * is not a valid Cairn name; see controller/names.ts). Publishing a volume to a node is
 * `volume.connect({ host: node_id })`; the connection info travels to the node in
 * publish_context, so a node needs no state store.
 *
 * Calls on one volume (or name) in this process take turns through {@link InFlight}; across
 * processes, through Cairn's locks. In `abort` mode a busy volume answers ABORTED at once.
 */
import { status } from '@grpc/grpc-js';
import type { Backend } from '../core/backend.js';
import type { Cairn } from '../core/cairn.js';
import type { Connection } from '../core/connection.js';
import type { SnapshotRecord, VolumeRecord } from '../core/records.js';
import type { Snapshot } from '../core/snapshot.js';
import type { Volume } from '../core/volume.js';
import { ErrorCode, errorMessage, isCairnError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { CONTROLLER_CAPABILITIES } from './capabilities.js';
import {
  type Capability,
  isReadOnlyMode,
  needsMultiAttach,
  readCapability,
  unsupportedReason,
} from './controller/access.js';
import { chooseSize, DEFAULT_VOLUME_SIZE, fits, type Range, readRange } from './controller/capacity.js';
import { conditionOf, InventoryCache } from './controller/condition.js';
import { csiSnapshotOf, csiVolumeOf, readParameters, volumeContextOf } from './controller/convert.js';
import { InFlight } from './controller/inflight.js';
import { CSI_NAME_KEY, cairnNameOf } from './controller/names.js';
import { paginate } from './controller/pages.js';
import { checkRequirement, checkTopologyKeys, reachableFrom, topologyOf } from './controller/topology.js';
import { grpcError } from './errors.js';
import { encodePublishContext } from './node/publish-context.js';
import type {
  ControllerExpandVolumeRequest,
  ControllerExpandVolumeResponse,
  ControllerGetCapabilitiesResponse,
  ControllerGetVolumeRequest,
  ControllerGetVolumeResponse,
  ControllerModifyVolumeRequest,
  ControllerPublishVolumeRequest,
  ControllerPublishVolumeResponse,
  ControllerUnpublishVolumeRequest,
  CreateSnapshotRequest,
  CreateVolumeRequest,
  CreateVolumeResponse,
  CsiSnapshot,
  DeleteSnapshotRequest,
  DeleteVolumeRequest,
  GetCapacityRequest,
  GetCapacityResponse,
  GetSnapshotRequest,
  ListSnapshotsRequest,
  ListSnapshotsResponse,
  ListVolumesRequest,
  ListVolumesResponse,
  ServiceHandlers,
  StringMap,
  TopologyRequirement,
  ValidateVolumeCapabilitiesRequest,
  ValidateVolumeCapabilitiesResponse,
  VolumeStatus,
} from './proto.js';
import { invalidField, requireList, requireMessage, requireString, unary } from './rpc.js';

/** What the Controller service needs. */
export interface ControllerDeps {
  /** An open context with every configured backend added. */
  cairn: Cairn;
  /** The controller host's node id: the topology of host-local (`file`) backends. */
  nodeId: string;
  /** Backend used when a StorageClass names none. */
  defaultBackend: string;
  concurrency: 'abort' | 'queue';
  /** Refuse to publish more than this many volumes to one node; 0 = no limit. */
  maxVolumesPerNode: number;
  logger: Logger;
}

/** StorageClass parameters the plugin understands (besides `csi.storage.k8s.io/*`). */
export const VOLUME_PARAMETERS = ['backend'] as const;

const conflict = (message: string) => grpcError(status.ALREADY_EXISTS, message);
const precondition = (message: string) => grpcError(status.FAILED_PRECONDITION, message);
const notFound = (message: string) => grpcError(status.NOT_FOUND, message);
const aborted = (message: string) => grpcError(status.ABORTED, message);

export function createControllerService(deps: ControllerDeps): ServiceHandlers {
  const { cairn, nodeId, logger: log } = deps;
  const inflight = new InFlight(deps.concurrency);
  const inventory = new InventoryCache();

  const configured = (name: string): Backend | undefined => cairn.backends.find((b) => b.name === name);

  /** The backend a volume or snapshot lives on, or FAILED_PRECONDITION when not configured here. */
  const backendFor = (rec: { id: string; kind: string; backend: string }): Backend => {
    const b = configured(rec.backend);
    if (!b)
      throw precondition(
        `${rec.kind} ${rec.id} is on backend "${rec.backend}", which is not configured in this plugin`,
      );
    return b;
  };

  const findVolume = async (id: string): Promise<Volume | undefined> => (await cairn.volumes({ id }))[0];
  const findSnapshot = async (id: string): Promise<Snapshot | undefined> =>
    (await cairn.snapshots({ id }))[0];

  /** A backend named by a parameter, or INVALID_ARGUMENT listing the configured ones. */
  const namedBackend = (name: string, field: string): Backend => {
    const b = configured(name);
    if (!b) {
      const known = cairn.backends.map((x) => x.name).join(', ') || 'none';
      throw invalidField(field, `unknown backend "${name}" (configured: ${known})`);
    }
    return b;
  };

  const csiVolume = (rec: VolumeRecord) => csiVolumeOf(rec, configured(rec.backend), nodeId);

  /** Volumes made for CSI name `name` (Cairn name `cairnName`), and any other holder of that name. */
  async function volumesNamed(cairnName: string, name: string) {
    const all = (await cairn.volumes({ name: cairnName })).map((v) => v.record);
    return {
      mine: all.filter((r) => r.metadata[CSI_NAME_KEY] === name),
      others: all.filter((r) => r.metadata[CSI_NAME_KEY] !== name),
    };
  }

  /**
   * An object left `creating` or `deleting` by a process that died (after this plugin started
   * and recovered its backends) would answer ABORTED forever: when one is found, recovery runs
   * for its backend (it skips objects a live operation holds). Returns true when it ran.
   */
  async function recoverIfStuck(rec: { status: string; backend: string }): Promise<boolean> {
    if (rec.status !== 'creating' && rec.status !== 'deleting') return false;
    if (!configured(rec.backend)) return false;
    try {
      await cairn.check({ repair: true, backend: rec.backend });
    } catch (err) {
      log.warn(
        { backend: rec.backend, err: errorMessage(err) },
        'recovery of an interrupted operation failed',
      );
    }
    return true;
  }

  async function publishedNodes(): Promise<Map<string, string[]>> {
    const byVolume = new Map<string, string[]>();
    for (const c of await cairn.connections()) {
      const hosts = byVolume.get(c.volumeId) ?? [];
      hosts.push(c.host);
      byVolume.set(c.volumeId, hosts);
    }
    return byVolume;
  }

  async function statusOf(rec: VolumeRecord, nodes: string[]): Promise<VolumeStatus> {
    return {
      published_node_ids: [...new Set(nodes)].sort(),
      volume_condition: await conditionOf(rec, configured(rec.backend), inventory),
    };
  }

  // ------------------------------------------------------------------------------------------
  // CreateVolume
  // ------------------------------------------------------------------------------------------

  type Source = { kind: 'snapshot'; rec: SnapshotRecord } | { kind: 'volume'; rec: VolumeRecord } | null;

  interface CreatePlan {
    name: string;
    cairnName: string;
    caps: Capability[];
    range: Range;
    backend: Backend;
    sourceRef: { kind: 'snapshot' | 'volume'; id: string } | null;
    requirement: TopologyRequirement | null;
  }

  /** Checks an existing volume of the same name against the request (the spec's idempotency). */
  function answerExisting(rec: VolumeRecord, plan: CreatePlan): CreateVolumeResponse {
    const what = `volume ${rec.id} named "${plan.name}"`;
    if (rec.backend !== plan.backend.name)
      throw conflict(
        `${what} exists on backend "${rec.backend}"; this request asks for "${plan.backend.name}"`,
      );
    if (!fits(rec.size, plan.range))
      throw conflict(
        `${what} exists with ${rec.size} bytes, outside the capacity_range asked for (required ${plan.range.required}, limit ${plan.range.limit || 'none'})`,
      );
    const wantSnap = plan.sourceRef?.kind === 'snapshot' ? plan.sourceRef.id : null;
    const wantVol = plan.sourceRef?.kind === 'volume' ? plan.sourceRef.id : null;
    if (rec.sourceSnapshotId !== wantSnap || rec.sourceVolumeId !== wantVol)
      throw conflict(`${what} exists with a different volume_content_source`);
    plan.caps.forEach((cap, i) => {
      const why = unsupportedReason(cap, plan.backend, rec);
      if (why) throw conflict(`${what} exists and does not support volume_capabilities[${i}]: ${why}`);
    });
    try {
      checkRequirement(plan.requirement, topologyOf(plan.backend, nodeId), plan.backend.name);
    } catch (err) {
      throw conflict(
        `${what} exists but is not accessible as accessibility_requirements ask: ${errorMessage(err)}`,
      );
    }
    if (rec.status === 'creating' || rec.status === 'deleting')
      throw aborted(
        `${what} is being ${rec.status === 'creating' ? 'created' : 'deleted'} by another operation; retry later`,
      );
    if (rec.status === 'error' || rec.status === 'error_deleting') {
      const why = rec.lastError ? `: ${rec.lastError.operation} failed: ${rec.lastError.message}` : '';
      throw precondition(
        `${what} is in state ${rec.status}${why}; delete it (DeleteVolume ${rec.id}) and retry`,
      );
    }
    return { volume: csiVolume(rec) };
  }

  async function createVolume(req: CreateVolumeRequest): Promise<CreateVolumeResponse> {
    const name = requireString(req.name, 'name');
    const caps = requireList(req.volume_capabilities, 'volume_capabilities').map((c, i) =>
      readCapability(c, `volume_capabilities[${i}]`),
    );
    if (Object.keys(req.mutable_parameters ?? {}).length > 0)
      throw invalidField(
        'mutable_parameters',
        'this plugin has no mutable parameters (no MODIFY_VOLUME capability)',
      );
    const params = readParameters(req.parameters, 'parameters', VOLUME_PARAMETERS);
    const range = readRange(req.capacity_range, 'capacity_range');
    const src = req.volume_content_source;
    let sourceRef: { kind: 'snapshot' | 'volume'; id: string } | null = null;
    if (src) {
      if (src.snapshot)
        sourceRef = {
          kind: 'snapshot',
          id: requireString(src.snapshot.snapshot_id, 'volume_content_source.snapshot.snapshot_id'),
        };
      else if (src.volume)
        sourceRef = {
          kind: 'volume',
          id: requireString(src.volume.volume_id, 'volume_content_source.volume.volume_id'),
        };
      else throw invalidField('volume_content_source', 'names neither a snapshot nor a volume');
    }
    const cairnName = cairnNameOf(name, 'name');

    return inflight.run([`volume-name:${cairnName}`], async () => {
      let existing = await volumesNamed(cairnName, name);
      if (existing.mine[0] && (await recoverIfStuck(existing.mine[0])))
        existing = await volumesNamed(cairnName, name);
      const mine = existing.mine[0];
      let source: Source = null;
      if (sourceRef?.kind === 'snapshot') {
        const s = await findSnapshot(sourceRef.id);
        if (s) source = { kind: 'snapshot', rec: s.record };
      } else if (sourceRef?.kind === 'volume') {
        const v = await findVolume(sourceRef.id);
        if (v) source = { kind: 'volume', rec: v.record };
      }
      // A missing source is NOT_FOUND, unless this is a retry of a create that succeeded before
      // the source went away: then the volume made from it is the answer.
      if (sourceRef && !source && !(mine && sourceIdOf(mine) === sourceRef.id))
        throw notFound(
          `volume_content_source.${sourceRef.kind}.${sourceRef.kind}_id: ${sourceRef.kind} ${sourceRef.id} not found`,
        );
      const asked = params.own.backend;
      const sourceBackend = source?.rec.backend ?? (sourceRef && mine ? mine.backend : undefined);
      if (sourceBackend !== undefined && asked !== undefined && asked !== sourceBackend)
        throw invalidField(
          'volume_content_source',
          `the source ${sourceRef?.kind} is on backend "${sourceBackend}" and a volume made from it stays there; parameters.backend asks for "${asked}"`,
        );
      const backend =
        sourceBackend !== undefined
          ? namedBackend(sourceBackend, 'volume_content_source')
          : namedBackend(
              asked ?? deps.defaultBackend,
              asked === undefined ? 'defaultBackend' : 'parameters.backend',
            );
      caps.forEach((cap, i) => {
        const why = unsupportedReason(cap, backend);
        if (why) throw invalidField(`volume_capabilities[${i}]`, why);
      });
      const multiattach = needsMultiAttach(caps);
      if (multiattach && sourceRef)
        throw invalidField(
          'volume_capabilities',
          'a volume made from a snapshot or a volume cannot be multi-attach (not supported yet)',
        );
      const plan: CreatePlan = {
        name,
        cairnName,
        caps,
        range,
        backend,
        sourceRef,
        requirement: req.accessibility_requirements,
      };
      if (mine) return answerExisting(mine, plan);
      if (existing.others[0])
        throw conflict(
          `the name "${cairnName}" is taken by volume ${existing.others[0].id} on backend "${existing.others[0].backend}", which was not created for CSI name "${name}"`,
        );

      checkRequirement(plan.requirement, topologyOf(backend, nodeId), backend.name);
      const alignment = backend.capabilities.sizeAlignment;
      const what = source ? `the source ${source.kind} (${source.rec.size} bytes)` : 'one byte';
      const minimum = source ? source.rec.size : 1;
      const size = chooseSize(
        range,
        alignment,
        minimum,
        source ? source.rec.size : DEFAULT_VOLUME_SIZE,
        what,
      );
      const metadata = { ...params.k8s, [CSI_NAME_KEY]: name };
      let volume: Volume;
      try {
        if (source?.kind === 'snapshot') {
          const snap = await cairn.snapshot(source.rec.id);
          volume = await snap.createVolume({ name: cairnName, size, metadata });
        } else if (source?.kind === 'volume') {
          const src = await cairn.volume(source.rec.id);
          volume = await src.clone({ name: cairnName, size, metadata });
        } else {
          volume = await backend.createVolume({ name: cairnName, size, metadata, multiattach });
        }
      } catch (err) {
        // Another process made the same name meanwhile: answer as for an existing volume.
        if (isCairnError(err, ErrorCode.AlreadyExists)) {
          const again = await volumesNamed(cairnName, name);
          if (again.mine[0]) return answerExisting(again.mine[0], plan);
        }
        if (isCairnError(err, ErrorCode.InvalidState) && source)
          throw precondition(`volume_content_source: ${errorMessage(err)}`);
        throw err;
      } finally {
        inventory.invalidate(backend.name);
      }
      return { volume: csiVolume(volume.record) };
    });
  }

  // ------------------------------------------------------------------------------------------
  // Publish
  // ------------------------------------------------------------------------------------------

  /** What the node needs to attach: the connection info, as strings (see node/publish-context.ts). */
  const publishContextOf = (c: Connection): StringMap => encodePublishContext(c.info);

  /** The answer for a volume already connected to the node, or null when it is not. */
  function alreadyPublished(conns: Connection[], node: string, mode: 'rw' | 'ro', volumeId: string) {
    const mine = conns.find((c) => c.host === node);
    if (!mine) return null;
    if (mine.mode !== mode)
      throw conflict(
        `volume ${volumeId} is published to node ${node} ${mine.mode === 'ro' ? 'read-only' : 'read-write'}; unpublish it before publishing it ${mode === 'ro' ? 'read-only' : 'read-write'}`,
      );
    if (mine.status === 'connecting')
      throw aborted(`volume ${volumeId} is being published to node ${node}; retry later`);
    if (mine.status === 'disconnecting' || mine.status === 'error')
      throw precondition(
        `volume ${volumeId} has a connection to node ${node} in state ${mine.status}; unpublish it (ControllerUnpublishVolume) and retry`,
      );
    return { publish_context: publishContextOf(mine) };
  }

  async function publish(req: ControllerPublishVolumeRequest): Promise<ControllerPublishVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    const node = requireString(req.node_id, 'node_id');
    const cap = readCapability(req.volume_capability, 'volume_capability');
    return inflight.run([`volume:${id}`], async () => {
      const volume = await findVolume(id);
      if (!volume) throw notFound(`volume_id: volume ${id} not found`);
      const backend = backendFor(volume.record);
      const why = unsupportedReason(cap, backend, volume.record);
      if (why) throw invalidField('volume_capability', why);
      const ctxBackend = req.volume_context?.backend;
      if (ctxBackend !== undefined && ctxBackend !== volume.backendName)
        throw invalidField(
          'volume_context',
          `backend "${ctxBackend}" does not match the volume's backend "${volume.backendName}"`,
        );
      const mode = req.readonly || isReadOnlyMode(cap.mode) ? 'ro' : 'rw';

      const conns = await volume.connections();
      const done = alreadyPublished(conns, node, mode, id);
      if (done) return done;
      const others = conns.filter((c) => c.host !== node).map((c) => c.host);
      if (others.length > 0 && !(volume.record.multiattach && backend.capabilities.multiAttach))
        throw precondition(
          `volume ${id} is already published to node ${others.join(', ')} and is not multi-attach`,
        );
      try {
        backend.validateConnector({ host: node });
      } catch (err) {
        throw notFound(
          `node_id: node "${node}" is not reachable from backend "${backend.name}": ${errorMessage(err)}`,
        );
      }
      if (deps.maxVolumesPerNode > 0) {
        const count = (await cairn.connections({ host: node })).length;
        if (count >= deps.maxVolumesPerNode)
          throw grpcError(
            status.RESOURCE_EXHAUSTED,
            `node ${node} has ${count} volumes published, the most allowed (CAIRN_CSI_MAX_VOLUMES_PER_NODE=${deps.maxVolumesPerNode})`,
          );
      }
      try {
        const conn = await volume.connect({ host: node }, { mode });
        return { publish_context: publishContextOf(conn) };
      } catch (err) {
        // Another process connected it meanwhile: answer as for a published volume.
        if (isCairnError(err, ErrorCode.InvalidState)) {
          const again = alreadyPublished(await volume.connections(), node, mode, id);
          if (again) return again;
        }
        throw err;
      }
    });
  }

  async function unpublish(req: ControllerUnpublishVolumeRequest): Promise<Record<string, never>> {
    const id = requireString(req.volume_id, 'volume_id');
    const node = req.node_id;
    return inflight.run([`volume:${id}`], async () => {
      const volume = await findVolume(id);
      if (!volume) return {}; // gone: nothing is published
      const conns = (await volume.connections()).filter((c) => !node || c.host === node);
      if (conns.length === 0) return {};
      backendFor(volume.record);
      for (const c of conns) await c.disconnect();
      return {};
    });
  }

  // ------------------------------------------------------------------------------------------
  // Handlers
  // ------------------------------------------------------------------------------------------

  return {
    CreateVolume: unary('CreateVolume', log, createVolume),

    DeleteVolume: unary<DeleteVolumeRequest, Record<string, never>>('DeleteVolume', log, async (req) => {
      const id = requireString(req.volume_id, 'volume_id');
      return inflight.run([`volume:${id}`], async () => {
        const volume = await findVolume(id);
        if (!volume) return {};
        backendFor(volume.record);
        try {
          await volume.delete();
        } finally {
          inventory.invalidate(volume.backendName);
        }
        return {};
      });
    }),

    ControllerPublishVolume: unary('ControllerPublishVolume', log, publish),
    ControllerUnpublishVolume: unary('ControllerUnpublishVolume', log, unpublish),

    ValidateVolumeCapabilities: unary<ValidateVolumeCapabilitiesRequest, ValidateVolumeCapabilitiesResponse>(
      'ValidateVolumeCapabilities',
      log,
      async (req) => {
        const id = requireString(req.volume_id, 'volume_id');
        const caps = requireList(req.volume_capabilities, 'volume_capabilities').map((c, i) =>
          readCapability(c, `volume_capabilities[${i}]`),
        );
        const volume = await findVolume(id);
        if (!volume) throw notFound(`volume_id: volume ${id} not found`);
        const refuse = (message: string): ValidateVolumeCapabilitiesResponse => ({
          confirmed: null,
          message,
        });
        const backend = configured(volume.backendName);
        if (!backend)
          return refuse(
            `the volume is on backend "${volume.backendName}", which is not configured in this plugin`,
          );
        for (const [i, cap] of caps.entries()) {
          const why = unsupportedReason(cap, backend, volume.record);
          if (why) return refuse(`volume_capabilities[${i}]: ${why}`);
        }
        const context = volumeContextOf(volume.record);
        for (const [k, v] of Object.entries(req.volume_context ?? {})) {
          if (k in context && context[k] !== v)
            return refuse(`volume_context.${k}: "${v}" does not match the volume ("${context[k]}")`);
        }
        let params: ReturnType<typeof readParameters>;
        try {
          params = readParameters(req.parameters, 'parameters', VOLUME_PARAMETERS);
        } catch (err) {
          return refuse(errorMessage(err));
        }
        if (params.own.backend !== undefined && params.own.backend !== volume.backendName)
          return refuse(
            `parameters.backend: the volume is on backend "${volume.backendName}", not "${params.own.backend}"`,
          );
        if (Object.keys(req.mutable_parameters ?? {}).length > 0)
          return refuse('mutable_parameters: this plugin has no mutable parameters');
        return {
          confirmed: {
            volume_context: req.volume_context ?? {},
            volume_capabilities: req.volume_capabilities,
            parameters: req.parameters ?? {},
            mutable_parameters: {},
          },
          message: '',
        };
      },
      { quiet: true },
    ),

    ListVolumes: unary<ListVolumesRequest, ListVolumesResponse>(
      'ListVolumes',
      log,
      async (req) => {
        const records = (await cairn.volumes())
          .map((v) => v.record)
          .filter((r) => configured(r.backend))
          .sort(byPosition);
        const { page, nextToken } = paginate(records, req.max_entries, req.starting_token);
        const nodes = await publishedNodes();
        const entries = await Promise.all(
          page.map(async (r) => ({ volume: csiVolume(r), status: await statusOf(r, nodes.get(r.id) ?? []) })),
        );
        return { entries, next_token: nextToken };
      },
      { quiet: true },
    ),

    GetCapacity: unary<GetCapacityRequest, GetCapacityResponse>(
      'GetCapacity',
      log,
      async (req) => {
        const params = readParameters(req.parameters, 'parameters', VOLUME_PARAMETERS);
        const asked = params.own.backend;
        const backend = namedBackend(
          asked ?? deps.defaultBackend,
          asked === undefined ? 'defaultBackend' : 'parameters.backend',
        );
        const caps = (req.volume_capabilities ?? []).map((c, i) =>
          readCapability(c, `volume_capabilities[${i}]`),
        );
        checkTopologyKeys(req.accessible_topology, 'accessible_topology');
        const alignment = backend.capabilities.sizeAlignment;
        const minimum = { value: String(alignment) };
        const none = { available_capacity: '0', maximum_volume_size: null, minimum_volume_size: minimum };
        if (caps.some((c) => unsupportedReason(c, backend) !== null)) return none;
        if (req.accessible_topology && !reachableFrom(topologyOf(backend, nodeId), req.accessible_topology))
          return none;
        const stats = await backend.stats();
        const free = Math.max(0, Math.floor(stats.freeBytes / alignment) * alignment);
        return {
          available_capacity: String(free),
          // A thick backend cannot make a volume larger than its free space; a thin one can.
          maximum_volume_size: stats.thin ? null : { value: String(free) },
          minimum_volume_size: minimum,
        };
      },
      { quiet: true },
    ),

    ControllerGetCapabilities: unary<unknown, ControllerGetCapabilitiesResponse>(
      'ControllerGetCapabilities',
      log,
      async () => ({ capabilities: CONTROLLER_CAPABILITIES.map((type) => ({ rpc: { type } })) }),
      { quiet: true },
    ),

    CreateSnapshot: unary<CreateSnapshotRequest, { snapshot: CsiSnapshot }>(
      'CreateSnapshot',
      log,
      async (req) => {
        const sourceId = requireString(req.source_volume_id, 'source_volume_id');
        const name = requireString(req.name, 'name');
        const params = readParameters(req.parameters, 'parameters', []);
        const cairnName = cairnNameOf(name, 'name');
        return inflight.run([`snapshot-name:${cairnName}`], async () => {
          const answerExisting = (rec: SnapshotRecord) => {
            const what = `snapshot ${rec.id} named "${name}"`;
            if (rec.volumeId !== sourceId)
              throw conflict(`${what} exists for volume ${rec.volumeId}, not source_volume_id ${sourceId}`);
            if (rec.status === 'creating' || rec.status === 'deleting')
              throw aborted(
                `${what} is being ${rec.status === 'creating' ? 'created' : 'deleted'} by another operation; retry later`,
              );
            if (rec.status === 'error' || rec.status === 'error_deleting') {
              const why = rec.lastError
                ? `: ${rec.lastError.operation} failed: ${rec.lastError.message}`
                : '';
              throw grpcError(
                status.INTERNAL,
                `${what} failed (state ${rec.status}${why}); delete it and retry`,
              );
            }
            return { snapshot: csiSnapshotOf(rec) };
          };
          const named = async () => {
            let all = (await cairn.snapshots({ name: cairnName })).map((s) => s.record);
            const stuck = all.find((r) => r.metadata[CSI_NAME_KEY] === name);
            if (stuck && (await recoverIfStuck(stuck)))
              all = (await cairn.snapshots({ name: cairnName })).map((s) => s.record);
            const mine = all.find((r) => r.metadata[CSI_NAME_KEY] === name);
            if (mine) return mine;
            const other = all[0];
            if (other)
              throw conflict(
                `the name "${cairnName}" is taken by snapshot ${other.id}, which was not created for CSI name "${name}"`,
              );
            return undefined;
          };
          const existing = await named();
          if (existing) return answerExisting(existing);
          const volume = await findVolume(sourceId);
          if (!volume) throw notFound(`source_volume_id: volume ${sourceId} not found`);
          const backend = backendFor(volume.record);
          if (!backend.capabilities.snapshots)
            throw invalidField(
              'source_volume_id',
              `backend "${backend.name}" (${backend.driverName}) cannot take snapshots`,
            );
          try {
            const snap = await volume.createSnapshot({
              name: cairnName,
              metadata: { ...params.k8s, [CSI_NAME_KEY]: name },
            });
            return { snapshot: csiSnapshotOf(snap.record) };
          } catch (err) {
            if (isCairnError(err, ErrorCode.AlreadyExists)) {
              const again = await named();
              if (again) return answerExisting(again);
            }
            throw err;
          }
        });
      },
    ),

    DeleteSnapshot: unary<DeleteSnapshotRequest, Record<string, never>>(
      'DeleteSnapshot',
      log,
      async (req) => {
        const id = requireString(req.snapshot_id, 'snapshot_id');
        return inflight.run([`snapshot:${id}`], async () => {
          const snap = await findSnapshot(id);
          if (!snap) return {};
          backendFor(snap.record);
          await snap.delete();
          return {};
        });
      },
    ),

    ListSnapshots: unary<ListSnapshotsRequest, ListSnapshotsResponse>(
      'ListSnapshots',
      log,
      async (req) => {
        const filter: { id?: string; volumeId?: string } = {};
        if (req.snapshot_id) filter.id = req.snapshot_id;
        if (req.source_volume_id) filter.volumeId = req.source_volume_id;
        // A snapshot not yet cut is not listed (the spec); one being processed would be.
        const records = (await cairn.snapshots(filter))
          .map((s) => s.record)
          .filter((r) => r.status !== 'creating' && configured(r.backend))
          .sort(byPosition);
        const { page, nextToken } = paginate(records, req.max_entries, req.starting_token);
        return { entries: page.map((r) => ({ snapshot: csiSnapshotOf(r) })), next_token: nextToken };
      },
      { quiet: true },
    ),

    GetSnapshot: unary<GetSnapshotRequest, { snapshot: CsiSnapshot }>(
      'GetSnapshot',
      log,
      async (req) => {
        const id = requireString(req.snapshot_id, 'snapshot_id');
        const snap = await findSnapshot(id);
        if (!snap) throw notFound(`snapshot_id: snapshot ${id} not found`);
        return { snapshot: csiSnapshotOf(snap.record) };
      },
      { quiet: true },
    ),

    ControllerExpandVolume: unary<ControllerExpandVolumeRequest, ControllerExpandVolumeResponse>(
      'ControllerExpandVolume',
      log,
      async (req) => {
        const id = requireString(req.volume_id, 'volume_id');
        const range = readRange(requireMessage(req.capacity_range, 'capacity_range'), 'capacity_range');
        if (range.required === 0 && range.limit === 0)
          throw invalidField('capacity_range', 'required_bytes or limit_bytes is required');
        const cap = req.volume_capability ? readCapability(req.volume_capability, 'volume_capability') : null;
        return inflight.run([`volume:${id}`], async () => {
          const volume = await findVolume(id);
          if (!volume) throw notFound(`volume_id: volume ${id} not found`);
          const backend = backendFor(volume.record);
          if (cap) {
            const why = unsupportedReason(cap, backend, volume.record);
            if (why) throw invalidField('volume_capability', why);
          }
          const published = (await volume.connections()).length > 0;
          // A mounted file system must be grown on the node; so must a published block device
          // (a loop device shows the new size only after the node rescans it). Unknown use: ask.
          const nodeExpansion = cap === null || cap.type === 'mount' || published;
          const target = range.required || range.limit;
          if (volume.size >= target)
            return { capacity_bytes: String(volume.size), node_expansion_required: nodeExpansion };
          const size = chooseSize(range, backend.capabilities.sizeAlignment, 1, target, 'one byte');
          if (published && !backend.capabilities.onlineExtend)
            throw precondition(
              `volume ${id} is published and backend "${backend.name}" can only grow unpublished volumes`,
            );
          try {
            await volume.extend(size);
          } catch (err) {
            if (isCairnError(err, ErrorCode.Unsupported)) throw precondition(errorMessage(err));
            throw err;
          } finally {
            inventory.invalidate(backend.name);
          }
          return { capacity_bytes: String(volume.size), node_expansion_required: nodeExpansion };
        });
      },
    ),

    ControllerGetVolume: unary<ControllerGetVolumeRequest, ControllerGetVolumeResponse>(
      'ControllerGetVolume',
      log,
      async (req) => {
        const id = requireString(req.volume_id, 'volume_id');
        const volume = await findVolume(id);
        if (!volume) throw notFound(`volume_id: volume ${id} not found`);
        const nodes = (await volume.connections()).map((c) => c.host);
        const rec = volume.record;
        return { volume: csiVolume(rec), status: await statusOf(rec, nodes) };
      },
      { quiet: true },
    ),

    ControllerModifyVolume: unary<ControllerModifyVolumeRequest, Record<string, never>>(
      'ControllerModifyVolume',
      log,
      async (req) => {
        const id = requireString(req.volume_id, 'volume_id');
        const keys = Object.keys(req.mutable_parameters ?? {});
        if (keys.length === 0) throw invalidField('mutable_parameters', 'is required (at least one)');
        if (!(await findVolume(id))) throw notFound(`volume_id: volume ${id} not found`);
        // No parameter of a Cairn volume can change in place yet: refuse them all, changing nothing.
        throw invalidField(`mutable_parameters.${keys[0]}`, 'this plugin has no mutable parameters');
      },
    ),
  };
}

/** The id of the snapshot or volume a volume was made from, or null. */
function sourceIdOf(rec: VolumeRecord): string | null {
  return rec.sourceSnapshotId ?? rec.sourceVolumeId;
}

/** The state store's order: creation time, then id. */
function byPosition(a: { createdAt: string; id: string }, b: { createdAt: string; id: string }): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
