import { invalidArgument, invalidState } from '../../util/errors.js';
import { ACCESS_MODE_NAMES, type AccessModeName } from '../proto.js';
import { FS_TYPES, type FsType, isFsType } from './format.js';

/** `VolumeCapability` as proto-loader hands it over (keepCase, enums as names, oneofs). */
export interface VolumeCapabilityMessage {
  block?: object | null;
  mount?: { fs_type?: string; mount_flags?: string[]; volume_mount_group?: string } | null;
  access_mode?: { mode?: string | number } | null;
  access_type?: string;
}

/** CSI access modes, by their proto numbers. */
export const ACCESS_MODES = ACCESS_MODE_NAMES;
export type AccessMode = AccessModeName;

/** A checked volume capability, in a canonical form that can be compared. */
export interface Capability {
  access: 'block' | 'mount';
  /** The file system asked for; null when the request named none (mount only). */
  fsType: FsType | null;
  /** Mount options, one per element, in request order (mount only). */
  mountFlags: string[];
  mode: AccessMode;
}

/** Modes under which a volume is only ever read. */
export function isReaderOnly(mode: AccessMode): boolean {
  return mode === 'SINGLE_NODE_READER_ONLY' || mode === 'MULTI_NODE_READER_ONLY';
}

/**
 * Modes that allow several `NodePublishVolume` targets on one node (the spec's second table):
 * `SINGLE_NODE_MULTI_WRITER` and every `MULTI_NODE_…` mode.
 */
export function allowsManyTargets(mode: AccessMode): boolean {
  return mode === 'SINGLE_NODE_MULTI_WRITER' || mode.startsWith('MULTI_NODE_');
}

/** Options that would turn the mount into something else than a mount of this device. */
const REFUSED_OPTIONS = /^(bind|rbind|remount|move|loop|make-.*|x-mount\..*|offset|sizelimit|helper)$/i;
/** Characters a mount option may hold: no shell metacharacters, blanks or quotes. */
const OPTION_CHARS = /^[A-Za-z0-9_.:=@+/-]+$/;

/**
 * Checks a request's `volume_capability` (INVALID_ARGUMENT for a missing or bad field). Mount
 * flags are never quoted in a message: the spec says they may hold sensitive values.
 */
export function parseCapability(field: string, cap: VolumeCapabilityMessage | null | undefined): Capability {
  if (!cap) throw invalidArgument(`${field} is required`);
  const mode = accessMode(cap.access_mode?.mode);
  if (mode === 'UNKNOWN') throw invalidArgument(`${field}.access_mode.mode is required`);
  const kind = cap.access_type || (cap.mount ? 'mount' : cap.block ? 'block' : '');
  if (kind === 'block') return { access: 'block', fsType: null, mountFlags: [], mode };
  if (kind !== 'mount' || !cap.mount) throw invalidArgument(`${field} must have block or mount access`);
  const m = cap.mount;
  if (m.volume_mount_group)
    throw invalidArgument(`${field}.mount.volume_mount_group is not supported (no VOLUME_MOUNT_GROUP)`);
  let fsType: FsType | null = null;
  if (m.fs_type) {
    if (!isFsType(m.fs_type))
      throw invalidArgument(
        `${field}.mount.fs_type ${JSON.stringify(m.fs_type.slice(0, 32))} is not supported; use ${FS_TYPES.join(', ')}`,
      );
    fsType = m.fs_type;
  }
  const mountFlags: string[] = [];
  for (const [i, flag] of (m.mount_flags ?? []).entries()) {
    for (const option of flag.split(',')) {
      if (option === '') continue;
      if (!OPTION_CHARS.test(option))
        throw invalidArgument(`${field}.mount.mount_flags[${i}] holds a character that is not allowed`);
      const name = option.split('=')[0]!;
      if (REFUSED_OPTIONS.test(name))
        throw invalidArgument(`${field}.mount.mount_flags[${i}]: the option ${name} is not allowed`);
      mountFlags.push(option);
    }
  }
  if (mode === 'MULTI_NODE_SINGLE_WRITER' || mode === 'MULTI_NODE_MULTI_WRITER')
    throw invalidState(
      `${mode} needs block access: ${FS_TYPES.join(', ')} can't be mounted writable on several nodes`,
    );
  return { access: 'mount', fsType, mountFlags, mode };
}

function accessMode(value: string | number | undefined): AccessMode {
  if (typeof value === 'number') return ACCESS_MODES[value] ?? 'UNKNOWN';
  return (ACCESS_MODES as readonly string[]).includes(value ?? '') ? (value as AccessMode) : 'UNKNOWN';
}

/** True when two capabilities ask for the same thing (mount options compared as sets). */
export function sameCapability(a: Capability, b: Capability): boolean {
  const flags = (c: Capability) => JSON.stringify([...new Set(c.mountFlags)].sort());
  return a.access === b.access && a.fsType === b.fsType && a.mode === b.mode && flags(a) === flags(b);
}
