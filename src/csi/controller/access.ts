/**
 * Volume capabilities (block or mount, and an access mode) and what a backend must offer for
 * them. A volume published to several nodes needs a backend with multi-attach, and several
 * writers on several nodes are only safe on a raw block device: a mounted ext4/xfs/btrfs is
 * not a cluster file system.
 */
import type { Backend } from '../../core/backend.js';
import { FS_TYPES } from '../config.js';
import { ACCESS_MODE_NAMES, type AccessModeName, type VolumeCapability } from '../proto.js';
import { invalidField } from '../rpc.js';

const MULTI_NODE: readonly AccessModeName[] = [
  'MULTI_NODE_READER_ONLY',
  'MULTI_NODE_SINGLE_WRITER',
  'MULTI_NODE_MULTI_WRITER',
];
const MULTI_NODE_WRITERS: readonly AccessModeName[] = ['MULTI_NODE_SINGLE_WRITER', 'MULTI_NODE_MULTI_WRITER'];
const READ_ONLY: readonly AccessModeName[] = ['SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY'];
const KNOWN: readonly AccessModeName[] = ACCESS_MODE_NAMES.filter((m) => m !== 'UNKNOWN');

/** A capability checked for shape: an access type and a known access mode. */
export interface Capability {
  type: 'block' | 'mount';
  mode: AccessModeName;
  fsType: string;
}

/**
 * Checks the shape of a capability (the fields the spec marks required).
 * @throws INVALID_ARGUMENT naming the field
 */
export function readCapability(cap: VolumeCapability | null | undefined, field: string): Capability {
  if (!cap) throw invalidField(field, 'is required');
  const type = cap.access_type ?? (cap.block ? 'block' : cap.mount ? 'mount' : undefined);
  if (type !== 'block' && type !== 'mount')
    throw invalidField(`${field}.access_type`, 'is required (block or mount)');
  const mode = cap.access_mode?.mode;
  if (!cap.access_mode || !mode || mode === 'UNKNOWN')
    throw invalidField(`${field}.access_mode.mode`, 'is required (e.g. SINGLE_NODE_WRITER)');
  if (!KNOWN.includes(mode))
    throw invalidField(`${field}.access_mode.mode`, `${mode} is not a known access mode`);
  return { type, mode, fsType: type === 'mount' ? (cap.mount?.fs_type ?? '') : '' };
}

/** True when a volume with these capabilities may be published to more than one node. */
export const needsMultiAttach = (caps: readonly Capability[]) =>
  caps.some((c) => MULTI_NODE.includes(c.mode));

/** True when the capability only ever reads. */
export const isReadOnlyMode = (mode: AccessModeName) => READ_ONLY.includes(mode);

/**
 * Why a backend (and, for an existing volume, its multi-attach flag) cannot serve `cap`, or null
 * when it can.
 */
export function unsupportedReason(
  cap: Capability,
  backend: Backend,
  volume?: { multiattach: boolean },
): string | null {
  if (cap.type === 'mount' && cap.fsType !== '' && !(FS_TYPES as readonly string[]).includes(cap.fsType))
    return `file system "${cap.fsType}" is not supported (allowed: ${FS_TYPES.join(', ')})`;
  if (MULTI_NODE.includes(cap.mode)) {
    if (!backend.capabilities.multiAttach)
      return `access mode ${cap.mode} needs a volume published on several nodes, and backend "${backend.name}" (${backend.driverName}) has no multi-attach`;
    if (volume && !volume.multiattach)
      return `access mode ${cap.mode} needs a multi-attach volume, and this volume was not created for several nodes`;
    if (MULTI_NODE_WRITERS.includes(cap.mode) && cap.type === 'mount')
      return `access mode ${cap.mode} with a mounted file system would corrupt it (${FS_TYPES.join(', ')} are not cluster file systems); use a block volume`;
  }
  return null;
}
