import type { z } from 'zod';
import type { ConnectionInfo, HostConnector } from '../core/records.js';
import type { CommandRunner } from '../exec/runner.js';
import type { Logger } from '../util/logger.js';

/**
 * What a backend can do, as data: front ends decide from it, never from `instanceof`.
 */
export interface Capabilities {
  /** Volumes use space only as data is written. */
  thin: boolean;
  snapshots: boolean;
  /** `instant` when clones and volumes from snapshots share blocks (reflink, COW); `copy` otherwise. */
  cloneSpeed: 'instant' | 'copy';
  /** Volumes can be rolled back to one of their snapshots in place ({@link Driver.revertToSnapshot}). */
  revertToSnapshot: boolean;
  /** Existing backend objects can be adopted as volumes ({@link Driver.manageVolume}). */
  manageExisting: boolean;
  multiAttach: boolean;
  onlineExtend: boolean;
  /** Export protocols this backend offers, e.g. `['local']`. */
  protocols: readonly string[];
  /** Volume sizes are rounded up to a multiple of this many bytes. */
  sizeAlignment: number;
}

/** Capacity of a backend, in bytes. */
export interface BackendStats {
  totalBytes: number;
  freeBytes: number;
  /** Sum of the sizes of the volumes and snapshots the backend holds. */
  provisionedBytes: number;
  /** Bytes really allocated by them, where the backend can tell. */
  allocatedBytes: number | null;
  thin: boolean;
  volumeCount: number;
  snapshotCount: number;
}

/** The identity of a volume as a driver sees it: plain data, never a core object. */
export interface VolumeRef {
  id: string;
  name: string | null;
  size: number;
  driverData: Record<string, unknown>;
}

export interface SnapshotRef {
  id: string;
  name: string | null;
  volumeId: string;
  size: number;
  driverData: Record<string, unknown>;
}

/** Objects found on a backend: id → size in bytes. */
export interface Inventory {
  volumes: Map<string, number>;
  snapshots: Map<string, number>;
}

/** What a driver may change on a record after an operation. */
export interface DriverUpdate {
  driverData?: Record<string, unknown>;
  /** The size really made, when the backend rounded it. */
  size?: number;
}

/** Progress of a long copy, 0–1. */
export type ProgressFn = (fraction: number) => void;

/** What a driver receives besides its configuration. */
export interface DriverContext {
  backendName: string;
  runner: CommandRunner;
  logger: Logger;
}

/**
 * A storage backend (the backend side, like a Cinder volume driver). Drivers take plain refs
 * and return plain updates; Cairn keeps state, locks and life cycle. Every method is idempotent
 * where the name says so (delete of a missing volume succeeds).
 */
export interface Driver {
  readonly capabilities: Capabilities;
  createVolume(volume: VolumeRef): Promise<DriverUpdate | undefined>;
  cloneVolume(
    volume: VolumeRef,
    source: VolumeRef,
    onProgress?: ProgressFn,
  ): Promise<DriverUpdate | undefined>;
  createVolumeFromSnapshot(
    volume: VolumeRef,
    snapshot: SnapshotRef,
    onProgress?: ProgressFn,
  ): Promise<DriverUpdate | undefined>;
  /** Idempotent: deleting a volume that is not there succeeds. */
  deleteVolume(volume: VolumeRef): Promise<void>;
  extendVolume(volume: VolumeRef, newSize: number): Promise<DriverUpdate | undefined>;
  createSnapshot(snapshot: SnapshotRef, volume: VolumeRef): Promise<DriverUpdate | undefined>;
  /** Idempotent. */
  deleteSnapshot(snapshot: SnapshotRef): Promise<void>;
  /**
   * Rolls the volume's data back to the snapshot, in place. The volume is detached; it keeps its
   * size (a rollback that shrinks it to the snapshot's size is grown back). Present when
   * `capabilities.revertToSnapshot`.
   */
  revertToSnapshot?(volume: VolumeRef, snapshot: SnapshotRef): Promise<DriverUpdate | undefined>;
  /**
   * Adopts the existing backend object named `reference` (as the backend names it, e.g. an RBD
   * image or a file in the pool) as volume `volume.id`, typically by renaming it. Changes nothing
   * unless it succeeds. Present when `capabilities.manageExisting`.
   */
  manageVolume?(volume: VolumeRef, reference: string): Promise<DriverUpdate & { size: number }>;
  /**
   * The id of the Cairn volume whose object `reference` names, when it follows the driver's own
   * naming (`volume-<id>`): Cairn refuses to manage an object it already tracks.
   */
  volumeIdOf?(reference: string): string | undefined;
  /**
   * Cairn is about to forget the volume; the object stays on the backend. Returns the name it
   * has there, for the user to find (and manage) it again.
   */
  unmanageVolume?(volume: VolumeRef): Promise<string>;
  stats(): Promise<BackendStats>;
  /** Throws INVALID_ARGUMENT when this backend cannot export to the host `connector` describes. */
  validateConnector(connector: HostConnector): void;
  /** Makes the volume reachable from the host; returns what the host's connector needs. */
  exportVolume(volume: VolumeRef, connector: HostConnector, mode: 'rw' | 'ro'): Promise<ConnectionInfo>;
  /** Idempotent. */
  unexportVolume(volume: VolumeRef, info: ConnectionInfo, connector: HostConnector): Promise<void>;
  /**
   * The volumes and snapshots that really exist on the backend, by id with their sizes: what
   * consistency checks and crash recovery compare the state store with.
   */
  inventory(): Promise<Inventory>;
  close(): Promise<void>;
}

/**
 * A driver package's shape: a name, a zod schema of its configuration (the `driver` field
 * excluded) and a factory. Third-party drivers export one of these as `default` or `driver`.
 */
export interface DriverModule<S extends z.ZodType = z.ZodType> {
  name: string;
  configSchema: S;
  create(config: z.output<S>, ctx: DriverContext): Promise<Driver>;
}
