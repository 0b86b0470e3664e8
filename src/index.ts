/**
 * Cairn: block storage on any backend through one API.
 * @packageDocumentation
 */

export type { AttachedDevice, Connector } from './connectors/spi.js';
export { Backend } from './core/backend.js';
export { Cairn, defaultDataDir, type OpenOptions, type StateDump } from './core/cairn.js';
export type { BackendCheck } from './core/check.js';
export { Connection } from './core/connection.js';
export type {
  ConnectOptions,
  CreateSnapshotOptions,
  CreateVolumeOptions,
  DerivedVolumeOptions,
  ForceOptions,
} from './core/options.js';
export type {
  ConnectionInfo,
  ConnectionRecord,
  ConnectionStatus,
  HostConnector,
  LastError,
  SnapshotRecord,
  SnapshotStatus,
  VolumeRecord,
  VolumeStatus,
} from './core/records.js';
export type { RecoveryAction } from './core/recovery.js';
export { Snapshot } from './core/snapshot.js';
export { Volume } from './core/volume.js';
export type {
  BackendStats,
  Capabilities,
  Driver,
  DriverContext,
  DriverModule,
  DriverUpdate,
  Inventory,
  ProgressFn,
  SnapshotRef,
  VolumeRef,
} from './drivers/spi.js';
export { type CommandResult, type CommandRunner, createRunner, type RunOptions } from './exec/runner.js';
export type { StateOption } from './state/open.js';
export type { ListFilter, StateStore, StateStoreContext, StateStoreFactory } from './state/spi.js';
export { CairnError, ErrorCode, isCairnError } from './util/errors.js';
export type { Logger } from './util/logger.js';
export { formatSize, parseSize, type SizeInput } from './util/size.js';
