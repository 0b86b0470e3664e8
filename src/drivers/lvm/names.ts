import { invalidArgument } from '../../util/errors.js';

/** Volumes are the LVs `volume-<id>`. */
export const VOLUME = 'volume-';
/**
 * Snapshots are the LVs `_snapshot-<id>`: LVM reserves names that start with `snapshot` (as
 * Cinder's LVM driver, the underscore avoids it).
 */
export const SNAPSHOT = '_snapshot-';
/** A thick clone's temporary COW snapshot of its source, removed when the copy ends. */
export const CLONE = '_clone-';
/** A thin revert's new LV, renamed over the volume at the end. */
export const REVERT = '_revert-';

// lvm(8) "VALID NAMES": these substrings name LVM's own hidden sub-LVs, and LVM refuses them.
const RESERVED_PARTS = [
  '_cdata',
  '_cmeta',
  '_corig',
  '_cpool',
  '_cvol',
  '_imeta',
  '_iorig',
  '_mimage',
  '_mlog',
  '_pmspare',
  '_rimage',
  '_rmeta',
  '_tdata',
  '_tmeta',
  '_vdata',
  '_vorigin',
  '_wcorig',
];
const NAME_RE = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;

/** Why `name` is not a valid LV name, or null when it is one. */
export function lvNameProblem(name: string): string | null {
  if (!NAME_RE.test(name) || name === '.' || name === '..')
    return 'up to 127 letters, digits and "+_.-", not starting with "-", not "." or ".."';
  if (name.startsWith('snapshot') || name.startsWith('pvmove'))
    return 'LVM reserves names starting with "snapshot" or "pvmove"';
  const part = RESERVED_PARTS.find((p) => name.includes(p));
  return part ? `LVM reserves names containing "${part}"` : null;
}

/** Why `name` is not a valid VG name, or null. */
export function vgNameProblem(name: string): string | null {
  return NAME_RE.test(name) && name !== '.' && name !== '..'
    ? null
    : 'up to 127 letters, digits and "+_.-", not starting with "-", not "." or ".."';
}

/** The LV named `prefix + id`, refused as INVALID_ARGUMENT naming `field` when LVM would refuse it. */
export function lvName(prefix: string, id: string, field = 'id'): string {
  const name = `${prefix}${id}`;
  const problem = lvNameProblem(name);
  if (problem)
    throw invalidArgument(`${field}: "${id}" makes the LV name "${name}", which LVM refuses: ${problem}`);
  return name;
}

/** The id in a `prefix<id>` LV name, when it has that shape. */
export function idIn(prefix: string, lv: string): string | undefined {
  if (!lv.startsWith(prefix)) return undefined;
  const id = lv.slice(prefix.length);
  return /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id) ? id : undefined;
}

/** `/dev/<vg>/<lv>`: the link LVM makes for every active LV (with or without udev). */
export const lvPath = (vg: string, lv: string): string => `/dev/${vg}/${lv}`;
