import type { ConnectionInfo, HostConnector } from '../core/records.js';
import type { DriverContext } from '../drivers/spi.js';

/** A volume as an export sees it: its id and the local file or block device that holds it. */
export interface ExportTarget {
  volumeId: string;
  /** A regular file (`file` driver) or a block device (`lvm`) on the target host. */
  path: string;
  size: number;
}

/**
 * The target side of a network protocol (iSCSI, NVMe-oF, NBD): makes a volume that lives on this
 * host reachable by another host's connector. Drivers without a protocol of their own (`file`,
 * `lvm`) compose one with an `export` section in their configuration.
 *
 * Every method is idempotent, and the state an export keeps lives in the target's own
 * configuration (configfs, tgtd, a pid file under the run directory), so exports survive a
 * restart of Cairn: exporting again returns the same connection info.
 */
export interface Exporter {
  /** The connection protocol it produces, e.g. `iscsi`. */
  readonly protocol: string;
  /**
   * False when an exported volume cannot grow (qemu-nbd has no live resize): the driver then
   * reports no online extend, and Cairn refuses to extend a connected volume before changing
   * anything. Default true.
   */
  readonly onlineResize?: boolean;
  /** Throws INVALID_ARGUMENT when `connector` lacks what the protocol needs (initiator name, host NQN). */
  validateConnector(connector: HostConnector): void;
  /**
   * Exports the volume to the host `connector` describes (access limited to that initiator /
   * host NQN, with credentials where the protocol has them). Secrets in the returned info use
   * field names the redaction knows (`authPassword`…).
   */
  export(target: ExportTarget, connector: HostConnector, mode: 'rw' | 'ro'): Promise<ConnectionInfo>;
  /** Removes the host's access; the target itself goes with its last host. */
  unexport(target: ExportTarget, info: ConnectionInfo, connector: HostConnector): Promise<void>;
  /** Removes every export of the volume (before it is deleted). */
  remove(volumeId: string): Promise<void>;
  /** Makes exported LUNs/namespaces show a new size after the volume grew. */
  resize(target: ExportTarget): Promise<void>;
  close(): Promise<void>;
}

export type ExporterContext = DriverContext;
