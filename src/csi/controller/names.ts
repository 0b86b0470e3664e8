import { createHash } from 'node:crypto';
import { validateName } from '../../util/names.js';
import { invalidField } from '../rpc.js';

/** Metadata key holding the name the CO gave a volume or snapshot. */
export const CSI_NAME_KEY = 'csi.cairn.io/name';

// Spec: a CO name may be any Unicode string without these control characters.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the spec bans exactly these characters
const BANNED = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

/**
 * The Cairn name for a CSI name. CSI names such as `pvc-<uuid>` or `snapshot-<uuid>` are valid
 * Cairn names and are kept as they are; any other is mapped, always to the same
 * `csi-<first 40 hex digits of its SHA-256>`. The original is kept in the object's metadata
 * under {@link CSI_NAME_KEY} either way.
 * @throws INVALID_ARGUMENT for a name with characters the spec bans
 */
export function cairnNameOf(csiName: string, field: string): string {
  if (BANNED.test(csiName)) throw invalidField(field, 'contains control characters, which CSI names may not');
  try {
    return validateName(csiName);
  } catch {
    return `csi-${createHash('sha256').update(csiName, 'utf8').digest('hex').slice(0, 40)}`;
  }
}
