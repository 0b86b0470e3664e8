/**
 * The CSI wire format: `proto/csi.proto` loaded with @grpc/proto-loader, the service
 * definitions the server registers, and TypeScript shapes of the messages as proto-loader
 * decodes them (`keepCase`, int64 as decimal strings, enums as their names, defaults filled in,
 * oneofs named by a virtual field).
 *
 * Decoded requests always have every scalar, map and repeated field (with its zero value when
 * unset); an unset message field is `null`; an unset oneof member is absent. Responses may
 * leave out any field: it is sent as its zero value.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type GrpcObject,
  loadPackageDefinition,
  type ServiceClientConstructor,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';

/** How the proto is decoded; clients must use the same options to see the same shapes. */
export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * `proto/csi.proto` of this package. Compiled, this module is `dist/src/csi/proto.js`, three
 * levels below the package root; run from source (`src/csi/proto.ts`), two.
 */
export function protoPath(): string {
  const compiled = fileURLToPath(new URL('../../../proto/csi.proto', import.meta.url));
  if (existsSync(compiled)) return compiled;
  return fileURLToPath(new URL('../../proto/csi.proto', import.meta.url));
}

let loaded: { definition: PackageDefinition; pkg: GrpcObject } | undefined;

function load(): { definition: PackageDefinition; pkg: GrpcObject } {
  if (!loaded) {
    const definition = loadSync(protoPath(), PROTO_LOADER_OPTIONS);
    loaded = { definition, pkg: loadPackageDefinition(definition) };
  }
  return loaded;
}

/** The names of the five CSI services. */
export const CSI_SERVICES = [
  'Identity',
  'Controller',
  'Node',
  'GroupController',
  'SnapshotMetadata',
] as const;
export type CsiServiceName = (typeof CSI_SERVICES)[number];

/** The package definition (for `loadPackageDefinition` in clients and tests). */
export function csiPackageDefinition(): PackageDefinition {
  return load().definition;
}

/** A service's client constructor, e.g. `new (csiClient('Controller'))(address, credentials)`. */
export function csiClient(name: CsiServiceName): ServiceClientConstructor {
  const v1 = (load().pkg.csi as GrpcObject).v1 as GrpcObject;
  return v1[name] as ServiceClientConstructor;
}

/** A service's definition, for `server.addService`. */
export function csiService(name: CsiServiceName): ServiceDefinition {
  return csiClient(name).service;
}

/** Handlers of a service, each a grpc-js unary (or, for SnapshotMetadata, streaming) handler. */
export type ServiceHandlers = UntypedServiceImplementation;

// ---------------------------------------------------------------------------------------------
// Message shapes
// ---------------------------------------------------------------------------------------------

export type StringMap = Record<string, string>;
/** int64 on the wire: a decimal string when decoded; a string or number when sent. */
export type Int64 = string;

/** CSI access modes, in the order of their proto numbers. */
export const ACCESS_MODE_NAMES = [
  'UNKNOWN',
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'MULTI_NODE_READER_ONLY',
  'MULTI_NODE_SINGLE_WRITER',
  'MULTI_NODE_MULTI_WRITER',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
] as const;
export type AccessModeName = (typeof ACCESS_MODE_NAMES)[number];

export interface MountVolume {
  fs_type: string;
  mount_flags: string[];
  volume_mount_group: string;
}

export interface VolumeCapability {
  block?: Record<string, never>;
  mount?: MountVolume;
  /** Which of `block` and `mount` is set. */
  access_type?: 'block' | 'mount';
  access_mode: { mode: AccessModeName } | null;
}

export interface CapacityRange {
  required_bytes: Int64;
  limit_bytes: Int64;
}

export interface VolumeContentSource {
  snapshot?: { snapshot_id: string };
  volume?: { volume_id: string };
  type?: 'snapshot' | 'volume';
}

export interface Topology {
  segments: StringMap;
}

export interface TopologyRequirement {
  requisite: Topology[];
  preferred: Topology[];
}

/** A volume as sent in responses. */
export interface CsiVolume {
  capacity_bytes: Int64 | number;
  volume_id: string;
  volume_context?: StringMap;
  content_source?: Partial<VolumeContentSource> | null;
  accessible_topology?: Topology[];
}

export interface VolumeCondition {
  abnormal: boolean;
  message: string;
}

export interface Timestamp {
  seconds: Int64 | number;
  nanos: number;
}

/** A snapshot as sent in responses. */
export interface CsiSnapshot {
  size_bytes: Int64 | number;
  snapshot_id: string;
  source_volume_id: string;
  creation_time: Timestamp;
  ready_to_use: boolean;
  group_snapshot_id?: string;
}

// Identity

export interface GetPluginInfoResponse {
  name: string;
  vendor_version: string;
  manifest?: StringMap;
}

export type PluginCapability =
  | {
      service: {
        type: 'CONTROLLER_SERVICE' | 'VOLUME_ACCESSIBILITY_CONSTRAINTS' | 'GROUP_CONTROLLER_SERVICE';
      };
    }
  | { volume_expansion: { type: 'ONLINE' | 'OFFLINE' } };

export interface GetPluginCapabilitiesResponse {
  capabilities: PluginCapability[];
}

export interface ProbeResponse {
  ready?: { value: boolean } | null;
}

// Controller

export interface CreateVolumeRequest {
  name: string;
  capacity_range: CapacityRange | null;
  volume_capabilities: VolumeCapability[];
  parameters: StringMap;
  secrets: StringMap;
  volume_content_source: VolumeContentSource | null;
  accessibility_requirements: TopologyRequirement | null;
  mutable_parameters: StringMap;
}

export interface CreateVolumeResponse {
  volume: CsiVolume;
}

export interface DeleteVolumeRequest {
  volume_id: string;
  secrets: StringMap;
}

export interface ControllerPublishVolumeRequest {
  volume_id: string;
  node_id: string;
  volume_capability: VolumeCapability | null;
  readonly: boolean;
  secrets: StringMap;
  volume_context: StringMap;
}

export interface ControllerPublishVolumeResponse {
  publish_context: StringMap;
}

export interface ControllerUnpublishVolumeRequest {
  volume_id: string;
  node_id: string;
  secrets: StringMap;
}

export interface ValidateVolumeCapabilitiesRequest {
  volume_id: string;
  volume_context: StringMap;
  volume_capabilities: VolumeCapability[];
  parameters: StringMap;
  secrets: StringMap;
  mutable_parameters: StringMap;
}

export interface ValidateVolumeCapabilitiesResponse {
  confirmed: {
    volume_context: StringMap;
    volume_capabilities: VolumeCapability[];
    parameters: StringMap;
    mutable_parameters: StringMap;
  } | null;
  message: string;
}

export interface ListVolumesRequest {
  max_entries: number;
  starting_token: string;
}

export interface VolumeStatus {
  published_node_ids: string[];
  volume_condition: VolumeCondition | null;
}

export interface ListVolumesResponse {
  entries: Array<{ volume: CsiVolume; status: VolumeStatus }>;
  next_token: string;
}

export interface ControllerGetVolumeRequest {
  volume_id: string;
}

export interface ControllerGetVolumeResponse {
  volume: CsiVolume;
  status: VolumeStatus;
}

export interface ControllerModifyVolumeRequest {
  volume_id: string;
  secrets: StringMap;
  mutable_parameters: StringMap;
}

export interface GetCapacityRequest {
  volume_capabilities: VolumeCapability[];
  parameters: StringMap;
  accessible_topology: Topology | null;
}

export interface GetCapacityResponse {
  available_capacity: Int64 | number;
  maximum_volume_size?: { value: Int64 | number } | null;
  minimum_volume_size?: { value: Int64 | number } | null;
}

export type ControllerCapabilityName =
  | 'CREATE_DELETE_VOLUME'
  | 'PUBLISH_UNPUBLISH_VOLUME'
  | 'LIST_VOLUMES'
  | 'GET_CAPACITY'
  | 'CREATE_DELETE_SNAPSHOT'
  | 'LIST_SNAPSHOTS'
  | 'CLONE_VOLUME'
  | 'PUBLISH_READONLY'
  | 'EXPAND_VOLUME'
  | 'LIST_VOLUMES_PUBLISHED_NODES'
  | 'VOLUME_CONDITION'
  | 'GET_VOLUME'
  | 'SINGLE_NODE_MULTI_WRITER'
  | 'MODIFY_VOLUME'
  | 'GET_SNAPSHOT';

export interface ControllerGetCapabilitiesResponse {
  capabilities: Array<{ rpc: { type: ControllerCapabilityName } }>;
}

export interface CreateSnapshotRequest {
  source_volume_id: string;
  name: string;
  secrets: StringMap;
  parameters: StringMap;
}

export interface DeleteSnapshotRequest {
  snapshot_id: string;
  secrets: StringMap;
}

export interface ListSnapshotsRequest {
  max_entries: number;
  starting_token: string;
  source_volume_id: string;
  snapshot_id: string;
  secrets: StringMap;
}

export interface ListSnapshotsResponse {
  entries: Array<{ snapshot: CsiSnapshot }>;
  next_token: string;
}

export interface GetSnapshotRequest {
  snapshot_id: string;
  secrets: StringMap;
}

export interface ControllerExpandVolumeRequest {
  volume_id: string;
  capacity_range: CapacityRange | null;
  secrets: StringMap;
  volume_capability: VolumeCapability | null;
}

export interface ControllerExpandVolumeResponse {
  capacity_bytes: Int64 | number;
  node_expansion_required: boolean;
}

// Node

export interface NodeStageVolumeRequest {
  volume_id: string;
  publish_context: StringMap;
  staging_target_path: string;
  volume_capability: VolumeCapability | null;
  secrets: StringMap;
  volume_context: StringMap;
}

export interface NodeUnstageVolumeRequest {
  volume_id: string;
  staging_target_path: string;
}

export interface NodePublishVolumeRequest {
  volume_id: string;
  publish_context: StringMap;
  staging_target_path: string;
  target_path: string;
  volume_capability: VolumeCapability | null;
  readonly: boolean;
  secrets: StringMap;
  volume_context: StringMap;
}

export interface NodeUnpublishVolumeRequest {
  volume_id: string;
  target_path: string;
}

export interface NodeGetVolumeStatsRequest {
  volume_id: string;
  volume_path: string;
  staging_target_path: string;
}

export interface VolumeUsage {
  available: Int64 | number;
  total: Int64 | number;
  used: Int64 | number;
  unit: 'UNKNOWN' | 'BYTES' | 'INODES';
}

export interface NodeGetVolumeStatsResponse {
  usage: VolumeUsage[];
  volume_condition?: VolumeCondition | null;
}

export type NodeCapabilityName =
  | 'STAGE_UNSTAGE_VOLUME'
  | 'GET_VOLUME_STATS'
  | 'EXPAND_VOLUME'
  | 'VOLUME_CONDITION'
  | 'SINGLE_NODE_MULTI_WRITER'
  | 'VOLUME_MOUNT_GROUP';

export interface NodeGetCapabilitiesResponse {
  capabilities: Array<{ rpc: { type: NodeCapabilityName } }>;
}

export interface NodeGetInfoResponse {
  node_id: string;
  max_volumes_per_node: Int64 | number;
  accessible_topology?: Topology | null;
}

export interface NodeExpandVolumeRequest {
  volume_id: string;
  volume_path: string;
  capacity_range: CapacityRange | null;
  staging_target_path: string;
  volume_capability: VolumeCapability | null;
  secrets: StringMap;
}

export interface NodeExpandVolumeResponse {
  capacity_bytes: Int64 | number;
}
