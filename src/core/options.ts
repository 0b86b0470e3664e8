import { z } from 'zod';
import type { ProgressFn } from '../drivers/spi.js';
import { validateId, validateName } from '../util/names.js';
import { parseSize } from '../util/size.js';
import { parseWith } from '../util/zod.js';

/**
 * A zod field checked by one of Cairn's own validators, whose messages already name the value
 * (so `parseWith` doesn't repeat it).
 */
function checkedBy<T>(validate: (value: unknown, field: string) => T, field: string) {
  return z.unknown().transform((v, ctx) => {
    try {
      return validate(v, field);
    } catch (err) {
      const message = (err as Error).message.replace(`${field}: `, '');
      ctx.addIssue({ code: 'custom', message, params: { valueShown: true } });
      return z.NEVER;
    }
  });
}
const size = checkedBy(parseSize, 'size');
const name = checkedBy(validateName, 'name');
const id = checkedBy(validateId, 'id');
const metadata = z.record(z.string().max(255), z.string().max(65_535));
const description = z.string().max(1024);
const progress = z.custom<ProgressFn>((v) => typeof v === 'function', 'must be a function');

const common = {
  name: name.optional(),
  description: description.optional(),
  metadata: metadata.optional(),
  id: id.optional(),
};

const createVolume = z.strictObject({
  ...common,
  size,
  extraSpecs: z.record(z.string().max(255), z.string().max(4096)).optional(),
  multiattach: z.boolean().optional(),
});
/** Options of `backend.createVolume`. */
export interface CreateVolumeOptions {
  /** Bytes, or a string such as `'10GiB'`; rounded up to the backend's size alignment. */
  size: number | bigint | string;
  /** Unique per backend; letters, digits and `._:@+-`. */
  name?: string;
  description?: string;
  metadata?: Record<string, string>;
  /** Choose the id (default: a new UUID). */
  id?: string;
  /** Backend-specific options (like Cinder's extra specs). */
  extraSpecs?: Record<string, string>;
  /** Allow more than one connection at once (only on backends with multi-attach). */
  multiattach?: boolean;
}
export function parseCreateVolume(input: unknown) {
  return parseWith(createVolume, input, 'createVolume options');
}

const derivedVolume = z.strictObject({
  ...common,
  size: size.optional(),
  extraSpecs: z.record(z.string().max(255), z.string().max(4096)).optional(),
  onProgress: progress.optional(),
});
/** Options of `volume.clone` and `snapshot.createVolume`. */
export interface DerivedVolumeOptions extends Omit<CreateVolumeOptions, 'size' | 'multiattach'> {
  /** Default: the source's size; never smaller than it. */
  size?: number | bigint | string;
  /** Called with 0–1 while data is copied (on backends that copy). */
  onProgress?: ProgressFn;
}
export function parseDerivedVolume(input: unknown) {
  return parseWith(derivedVolume, input ?? {}, 'volume options');
}

const manageVolume = z.strictObject({
  ...common,
  // The driver checks the form of a reference (an image name, a file name); this only bounds it.
  reference: z.string().min(1).max(255),
  multiattach: z.boolean().optional(),
});
/** Options of `backend.manageVolume`. */
export interface ManageVolumeOptions extends Omit<CreateVolumeOptions, 'size' | 'extraSpecs'> {
  /** The object's name on the backend, e.g. an RBD image in the pool or a file in the pool directory. */
  reference: string;
}
export function parseManageVolume(input: unknown) {
  return parseWith(manageVolume, input, 'manageVolume options');
}

const createSnapshot = z.strictObject({ ...common });
/** Options of `volume.createSnapshot`. */
export interface CreateSnapshotOptions {
  name?: string;
  description?: string;
  metadata?: Record<string, string>;
  id?: string;
}
export function parseCreateSnapshot(input: unknown) {
  return parseWith(createSnapshot, input ?? {}, 'createSnapshot options');
}

export const connectOptionsSchema = z.strictObject({ mode: z.enum(['rw', 'ro']).default('rw') });
/** Options of `volume.connect` and `volume.attach`. */
export interface ConnectOptions {
  /** `ro` exports and attaches the volume read-only. Default `rw`. */
  mode?: 'rw' | 'ro';
}

export const forceOptionsSchema = z.strictObject({ force: z.boolean().default(false) });
/** Options of detach, disconnect and delete. */
export interface ForceOptions {
  /** Detach even while the device is in use; delete a volume stuck in a transitional state. */
  force?: boolean;
}
