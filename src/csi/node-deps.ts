import type { Connector } from '../connectors/spi.js';
import type { CommandRunner } from '../exec/runner.js';
import type { Logger } from '../util/logger.js';

/**
 * What the CSI Node service needs. A node attaches from the connection info the controller put
 * in `publish_context`, so it needs no access to the controller's state store.
 */
export interface NodeDeps {
  /** This node's id (NodeGetInfo), also the host name connections are made for. */
  nodeId: string;
  /** NodeGetInfo's max_volumes_per_node; 0 = no limit. */
  maxVolumesPerNode: number;
  /** NodeGetInfo's accessible topology segments, e.g. `{ 'cairn.io/host': nodeId }`. */
  topology: Record<string, string>;
  /** Filesystem made on a blank device when a mount volume names none: ext4, xfs or btrfs. */
  defaultFsType: 'ext4' | 'xfs' | 'btrfs';
  /** Directory where the node keeps what it must remember between calls and restarts. */
  stateDir: string;
  runner: CommandRunner;
  logger: Logger;
  /** The host-side connector for a protocol (`local`, …). */
  connector(protocol: string): Connector;
}
