/**
 * The plain records Cairn persists. They are JSON-safe (no Dates, no bigints, no undefined):
 * what is stored is exactly what `toJSON()` returns and what `load()` accepts.
 */
import { z } from 'zod';

/** Volume states. `in-use` means the volume has at least one connection. */
export const VOLUME_STATUSES = [
  'creating',
  'available',
  'in-use',
  'extending',
  'reverting',
  'deleting',
  'error',
  'error_deleting',
] as const;
export type VolumeStatus = (typeof VOLUME_STATUSES)[number];

export const SNAPSHOT_STATUSES = ['creating', 'available', 'deleting', 'error', 'error_deleting'] as const;
export type SnapshotStatus = (typeof SNAPSHOT_STATUSES)[number];

/**
 * Connection states: `connected` = exported to a host; `attached` = also a local device on
 * that host; `disconnecting` while the export is removed.
 */
export const CONNECTION_STATUSES = [
  'connecting',
  'connected',
  'attaching',
  'attached',
  'detaching',
  'disconnecting',
  'error',
] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

const stringMap = z.record(z.string(), z.string());
const json = z.record(z.string(), z.unknown());
const isoDate = z.string().min(1);

/** The last failure of an operation on an object, kept for the user to read. */
export const lastErrorSchema = z
  .strictObject({ operation: z.string(), message: z.string(), at: isoDate })
  .nullable();
export type LastError = z.infer<typeof lastErrorSchema>;

const base = {
  id: z.string().min(1),
  backend: z.string().min(1),
  name: z.string().nullable(),
  description: z.string().nullable(),
  metadata: stringMap,
  /** Why the object is in an error state, or what the last failed operation said. */
  lastError: lastErrorSchema,
  /** Incremented on every write; the store refuses a write based on an older version. */
  version: z.number().int().nonnegative(),
  createdAt: isoDate,
  updatedAt: isoDate,
  /** Whatever the driver needs to find the object again (opaque to Cairn). */
  driverData: json,
};

export const volumeRecordSchema = z.strictObject({
  kind: z.literal('volume'),
  ...base,
  status: z.enum(VOLUME_STATUSES),
  attachStatus: z.enum(['detached', 'attached']),
  size: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  sourceVolumeId: z.string().nullable(),
  sourceSnapshotId: z.string().nullable(),
  extraSpecs: stringMap,
  multiattach: z.boolean(),
});
export type VolumeRecord = z.infer<typeof volumeRecordSchema>;

export const snapshotRecordSchema = z.strictObject({
  kind: z.literal('snapshot'),
  ...base,
  status: z.enum(SNAPSHOT_STATUSES),
  volumeId: z.string().min(1),
  size: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
});
export type SnapshotRecord = z.infer<typeof snapshotRecordSchema>;

/** Where a volume is exported: a protocol and what a host connector needs to reach it. */
export const connectionInfoSchema = z.strictObject({ protocol: z.string().min(1), data: json });
export type ConnectionInfo = z.infer<typeof connectionInfoSchema>;

/** A host's connector properties (os-brick's names where they exist). */
export const hostConnectorSchema = z.looseObject({
  host: z.string().min(1),
  platform: z.string().optional(),
  osType: z.string().optional(),
  ips: z.array(z.string()).optional(),
  multipath: z.boolean().optional(),
  initiator: z.string().optional(),
  nqn: z.string().optional(),
  hostId: z.string().optional(),
});
export type HostConnector = z.infer<typeof hostConnectorSchema>;

export const connectionRecordSchema = z.strictObject({
  kind: z.literal('connection'),
  ...base,
  status: z.enum(CONNECTION_STATUSES),
  volumeId: z.string().min(1),
  host: z.string().min(1),
  mode: z.enum(['rw', 'ro']),
  connector: hostConnectorSchema,
  info: connectionInfoSchema,
  /** The local device path while attached on `host`. */
  path: z.string().nullable(),
});
export type ConnectionRecord = z.infer<typeof connectionRecordSchema>;

export type AnyRecord = VolumeRecord | SnapshotRecord | ConnectionRecord;
export type RecordKind = AnyRecord['kind'];
export type RecordOf<K extends RecordKind> = Extract<AnyRecord, { kind: K }>;

export const recordSchemas = {
  volume: volumeRecordSchema,
  snapshot: snapshotRecordSchema,
  connection: connectionRecordSchema,
} as const;

/** Fields every new record starts with. */
export function baseFields(id: string, backend: string, now = new Date().toISOString()) {
  return {
    id,
    backend,
    name: null,
    description: null,
    metadata: {},
    lastError: null,
    version: 0,
    createdAt: now,
    updatedAt: now,
    driverData: {},
  };
}
