/**
 * What the two iSCSI exporters (tgt, LIO) share: target names, LUN serials and CHAP credentials
 * derived from the volume id, initiator-name checks, and the connection info they return.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ConnectionInfo, HostConnector } from '../core/records.js';
import { invalidArgument } from '../util/errors.js';
import type { IscsiExportConfig } from './config.js';

/**
 * iSCSI names are case-insensitive and limited to `a-z 0-9 . - :` (RFC 3722), while volume ids
 * may hold capitals and `_`. An id that already fits is used as it is; any other is lowercased,
 * `_` becomes `-`, and a short hash of the original id is appended after a `.` (which no id
 * contains), so two ids never share a target.
 */
export function iqnSuffix(volumeId: string): string {
  if (/^[a-z0-9][a-z0-9-]*$/.test(volumeId)) return volumeId;
  return `${volumeId.toLowerCase().replaceAll('_', '-')}.${sha256(volumeId).slice(0, 8)}`;
}

/** The target of one volume: `<iqnPrefix>:<volume id>`. */
export function targetIqn(config: Pick<IscsiExportConfig, 'iqnPrefix'>, volumeId: string): string {
  return `${config.iqnPrefix}:${iqnSuffix(volumeId)}`;
}

/**
 * The LUN's unit serial number (SCSI VPD page 0x80), the same on every portal and every export
 * of the volume: the connector finds its disks by it, never by their order. 32 hex digits, so
 * tgt (36 characters at most) takes it, and LIO's NAA identifier (made from the serial's hex
 * digits) differs between volumes too.
 */
export function lunSerial(volumeId: string): string {
  return sha256(`cairn-volume:${volumeId}`).slice(0, 32);
}

/**
 * The CHAP user name of one initiator on one volume's target. Credentials are per volume and
 * per initiator: tgt keeps accounts in one global list (so names must be unique), and giving each
 * host its own secret means exporting to a second host never changes the first host's secret.
 */
export function chapUsername(volumeId: string, initiator: string): string {
  return `cairn-${sha256(`${volumeId}\0${initiator}`).slice(0, 20)}`;
}

/** A fresh CHAP secret: 24 characters of base64url (144 random bits), safe on any command line. */
export function newChapPassword(): string {
  return randomBytes(18).toString('base64url');
}

/** CHAP credentials of one host on one target. */
export interface ChapCredentials {
  username: string;
  password: string;
}

// iqn. (RFC 3720), eui. and naa. names; no blanks, commas or slashes, which would break tgtadm's
// parameter lists and configfs paths.
const INITIATOR =
  /^(iqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+(:[A-Za-z0-9._:-]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;

/** Throws INVALID_ARGUMENT unless `name` is a well-formed iSCSI initiator name. */
export function validateInitiatorName(name: unknown): string {
  if (typeof name !== 'string' || name.length > 223 || !INITIATOR.test(name)) {
    throw invalidArgument(
      `connector.initiator: ${JSON.stringify(name)} is not an iSCSI initiator name (iqn.YYYY-MM.domain[:name], eui.<16 hex>, naa.<hex>)`,
    );
  }
  return name;
}

/** The `validateConnector` of both exporters: the host must name its initiator. */
export function requireInitiator(connector: HostConnector): string {
  if (connector.initiator === undefined) {
    throw invalidArgument(
      `iSCSI export needs connector.initiator (the host's /etc/iscsi/initiatorname.iscsi); host "${connector.host}" has none`,
    );
  }
  return validateInitiatorName(connector.initiator);
}

/** Everything an iSCSI export returns. */
export interface IscsiExport {
  config: IscsiExportConfig;
  volumeId: string;
  iqn: string;
  lun: number;
  readOnly: boolean;
  multipath: boolean;
  chap: ChapCredentials | null;
}

/**
 * The connection info of an iSCSI export, with os-brick's field names in camelCase:
 * `targetIqn`, `targetPortal` (the first portal), `targetPortals` (all of them), `targetLun`,
 * `authMethod`/`authUsername`/`authPassword` (CHAP; `authPassword` is a secret the redaction
 * drops), plus `serial` (the LUN's unit serial), `readOnly`, `multipath` (the host asked for it)
 * and `volumeId`.
 */
export function iscsiConnectionInfo(e: IscsiExport): ConnectionInfo {
  const data: Record<string, unknown> = {
    targetIqn: e.iqn,
    targetPortal: e.config.portals[0]!,
    targetPortals: [...e.config.portals],
    targetLun: e.lun,
    serial: lunSerial(e.volumeId),
    readOnly: e.readOnly,
    multipath: e.multipath,
    volumeId: e.volumeId,
  };
  if (e.chap) {
    data.authMethod = 'CHAP';
    data.authUsername = e.chap.username;
    data.authPassword = e.chap.password;
  }
  return { protocol: 'iscsi', data };
}

/**
 * Throws INVALID_ARGUMENT unless `path` can be handed to the target: absolute, and without the
 * commas and line breaks that would split tgtd's and LIO's `key=value,key=value` parameter lists.
 */
export function validateBackingPath(path: string): string {
  if (!path.startsWith('/') || /[,\n\r\0]/.test(path)) {
    throw invalidArgument(
      `iSCSI export: the volume's path ${JSON.stringify(path)} must be absolute, without commas`,
    );
  }
  return path;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
