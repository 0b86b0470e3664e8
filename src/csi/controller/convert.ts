/** Cairn records as CSI messages, and StorageClass / VolumeSnapshotClass parameters. */
import type { Backend } from '../../core/backend.js';
import type { SnapshotRecord, VolumeRecord } from '../../core/records.js';
import type { CsiSnapshot, CsiVolume, StringMap, Timestamp, VolumeContentSource } from '../proto.js';
import { invalidField } from '../rpc.js';
import { topologyOf } from './topology.js';

/** Parameters Kubernetes' sidecars add (`--extra-create-metadata`): kept in the metadata. */
export const K8S_PREFIX = 'csi.storage.k8s.io/';

/** Parameters after validation: the plugin's own, and Kubernetes' to record. */
export interface Parameters {
  own: Record<string, string>;
  k8s: Record<string, string>;
}

/**
 * Splits and checks parameters: keys in `allowed` (with non-empty values) and keys under
 * `csi.storage.k8s.io/` are accepted; anything else is INVALID_ARGUMENT naming the key.
 */
export function readParameters(params: StringMap, field: string, allowed: readonly string[]): Parameters {
  const out: Parameters = { own: {}, k8s: {} };
  for (const [key, value] of Object.entries(params ?? {})) {
    if (key.startsWith(K8S_PREFIX)) out.k8s[key] = value;
    else if (allowed.includes(key)) {
      if (value === '') throw invalidField(`${field}.${key}`, 'must not be empty');
      out.own[key] = value;
    } else {
      const known = allowed.length > 0 ? allowed.join(', ') : 'none';
      throw invalidField(`${field}.${key}`, `unknown parameter (supported: ${known}, and ${K8S_PREFIX}*)`);
    }
  }
  return out;
}

/** An ISO date as a protobuf Timestamp. */
export function timestampOf(iso: string): Timestamp {
  const ms = Date.parse(iso);
  return { seconds: String(Math.floor(ms / 1000)), nanos: (((ms % 1000) + 1000) % 1000) * 1_000_000 };
}

/** The content source a volume was made from, or null. */
export function contentSourceOf(rec: VolumeRecord): VolumeContentSource | null {
  if (rec.sourceSnapshotId) return { snapshot: { snapshot_id: rec.sourceSnapshotId } };
  if (rec.sourceVolumeId) return { volume: { volume_id: rec.sourceVolumeId } };
  return null;
}

/** The volume_context every response for a volume carries (it never changes). */
export function volumeContextOf(rec: VolumeRecord): StringMap {
  return { backend: rec.backend };
}

/** A volume record as a CSI Volume. */
export function csiVolumeOf(rec: VolumeRecord, backend: Backend | undefined, nodeId: string): CsiVolume {
  return {
    capacity_bytes: String(rec.size),
    volume_id: rec.id,
    volume_context: volumeContextOf(rec),
    content_source: contentSourceOf(rec),
    accessible_topology: backend ? topologyOf(backend, nodeId) : [],
  };
}

/** A snapshot record as a CSI Snapshot; ready once the copy exists. */
export function csiSnapshotOf(rec: SnapshotRecord): CsiSnapshot {
  return {
    size_bytes: String(rec.size),
    snapshot_id: rec.id,
    source_volume_id: rec.volumeId,
    creation_time: timestampOf(rec.createdAt),
    ready_to_use: rec.status === 'available',
    group_snapshot_id: '',
  };
}
