/**
 * Where volumes can be reached from. A backend that exports only over the `local` protocol
 * (the `file` driver) serves only the host it runs on: its volumes carry the topology segment
 * {@link TOPOLOGY_KEY} = that host's node id (the controller's `CAIRN_CSI_NODE_ID`). Other backends
 * reach every node, and their volumes carry no topology.
 */
import { status } from '@grpc/grpc-js';
import type { Backend } from '../../core/backend.js';
import { TOPOLOGY_KEY } from '../config.js';
import { grpcError } from '../errors.js';
import type { Topology, TopologyRequirement } from '../proto.js';
import { invalidField } from '../rpc.js';

/** True when the backend's volumes are reachable from its own host only. */
export const isHostLocal = (backend: Backend) =>
  backend.capabilities.protocols.length > 0 && backend.capabilities.protocols.every((p) => p === 'local');

/** The topologies a backend's volumes are reachable from; empty = everywhere. */
export function topologyOf(backend: Backend, nodeId: string): Topology[] {
  return isHostLocal(backend) ? [{ segments: { [TOPOLOGY_KEY]: nodeId } }] : [];
}

function checkKeys(t: Topology, field: string): void {
  for (const key of Object.keys(t.segments ?? {})) {
    if (key !== TOPOLOGY_KEY)
      throw invalidField(field, `unknown topology key "${key}" (this plugin uses only ${TOPOLOGY_KEY})`);
  }
}

/** True when a volume reachable from `offered` (empty = everywhere) is reachable from `t`. */
export function reachableFrom(offered: readonly Topology[], t: Topology): boolean {
  if (offered.length === 0) return true;
  const wanted = t.segments?.[TOPOLOGY_KEY];
  return offered.some((o) => wanted === undefined || o.segments[TOPOLOGY_KEY] === wanted);
}

/**
 * Checks that a volume reachable from `offered` satisfies CreateVolume's accessibility
 * requirements: reachable from at least one requisite topology (when requisites are given).
 * Preferred topologies without requisites never fail: the plugin may choose.
 * @throws INVALID_ARGUMENT for topology keys this plugin does not use; RESOURCE_EXHAUSTED when
 *   the requisites exclude where the backend's volumes can live
 */
export function checkRequirement(
  req: TopologyRequirement | null,
  offered: readonly Topology[],
  backendName: string,
): void {
  if (!req) return;
  for (const [i, t] of req.requisite.entries()) checkKeys(t, `accessibility_requirements.requisite[${i}]`);
  for (const [i, t] of req.preferred.entries()) checkKeys(t, `accessibility_requirements.preferred[${i}]`);
  if (req.requisite.length === 0) return;
  if (req.requisite.some((t) => reachableFrom(offered, t))) return;
  const where = offered.map((o) => o.segments[TOPOLOGY_KEY]).join(', ');
  throw grpcError(
    status.RESOURCE_EXHAUSTED,
    `backend "${backendName}" keeps its volumes on ${TOPOLOGY_KEY}=${where}, which none of the requisite topologies (${req.requisite
      .map((t) => JSON.stringify(t.segments))
      .join(', ')}) includes`,
  );
}

/** Checks the keys of a single topology (GetCapacity's accessible_topology). */
export function checkTopologyKeys(t: Topology | null, field: string): void {
  if (t) checkKeys(t, field);
}
