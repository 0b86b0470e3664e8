import type { ConnectionInfo } from '../core/records.js';

/** A local device made from a connection. */
export interface AttachedDevice {
  /** Block device path, e.g. `/dev/loop3`. */
  path: string;
  type: 'block';
}

/**
 * The host side of a protocol (like an os-brick connector): turns connection info into a local
 * block device and back.
 */
export interface Connector {
  readonly protocol: string;
  attach(info: ConnectionInfo, opts: { readOnly: boolean }): Promise<AttachedDevice>;
  /** Idempotent. Without `force`, refuses while the device is mounted or held. */
  detach(info: ConnectionInfo, device: AttachedDevice, opts: { force: boolean }): Promise<void>;
  /** Makes the device show the volume's new size; returns the size the device now has. */
  extend(info: ConnectionInfo, device: AttachedDevice): Promise<number>;
  /**
   * Devices on this host attached from this connection info, found from the system rather than
   * from Cairn's records: used to clean up after a process died in the middle of an attach.
   */
  findDevices(info: ConnectionInfo): Promise<AttachedDevice[]>;
  /** The device's size in bytes, or null when it is gone. */
  deviceSize(device: AttachedDevice): Promise<number | null>;
}
