import { randomUUID } from 'node:crypto';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { connectionInfoSchema } from '../../core/records.js';
import { invalidState } from '../../util/errors.js';
import { ensurePrivateDir, hasCode } from '../../util/fsx.js';
import { ACCESS_MODES } from './capability.js';
import { FS_TYPES } from './format.js';
import { fileNameFor } from './paths.js';

const capabilitySchema = z.strictObject({
  access: z.enum(['block', 'mount']),
  fsType: z.enum(FS_TYPES).nullable(),
  mountFlags: z.array(z.string()),
  mode: z.enum(ACCESS_MODES),
});

/** One NodePublishVolume target of a staged volume. */
const publishSchema = z.strictObject({
  readonly: z.boolean(),
  capability: capabilitySchema,
  /** The read-only loop device bind-mounted there, for a read-only block publish (see views.ts). */
  view: z.string().nullable(),
});

/**
 * What a node remembers about a staged volume, so that every later call (and a plugin that was
 * restarted, even killed mid-call) can find the device, the connection and the file system.
 * Phases are written before the step they name starts: `attaching` (the device may or may not
 * exist yet), `attached` (`device` is set), `staged` (formatted if needed and mounted).
 */
export const stagedVolumeSchema = z.strictObject({
  version: z.literal(1),
  volumeId: z.string().min(1),
  stagingPath: z.string().min(1),
  phase: z.enum(['attaching', 'attached', 'staged']),
  capability: capabilitySchema,
  /** Attached read-only (a read-only export or a reader-only access mode). */
  readOnly: z.boolean(),
  info: connectionInfoSchema,
  device: z.string().nullable(),
  /** The file system on the device once staged (mount volumes). */
  fsType: z.enum(FS_TYPES).nullable(),
  /** Publish targets by path. */
  targets: z.record(z.string(), publishSchema),
  updatedAt: z.string(),
});
export type StagedVolume = z.infer<typeof stagedVolumeSchema>;

/**
 * The staging records: one JSON file per volume (mode 0600: connection info can hold
 * credentials) in `<stateDir>/staged`, replaced atomically (write, fsync, rename) so a crash
 * leaves the old record or the new one, never half of one.
 */
export class StagingRecords {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'staged');
  }

  private file(volumeId: string): string {
    return join(this.dir, `${fileNameFor(volumeId)}.json`);
  }

  /** The record of a volume, or null. A record that does not parse is an error, never ignored. */
  async get(volumeId: string): Promise<StagedVolume | null> {
    let text: string;
    try {
      text = await readFile(this.file(volumeId), 'utf8');
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return null;
      throw err;
    }
    const parsed = stagedVolumeSchema.safeParse(parseJson(text));
    if (!parsed.success || parsed.data.volumeId !== volumeId) {
      throw invalidState(`the staging record ${this.file(volumeId)} is corrupt or foreign; check it by hand`);
    }
    return parsed.data;
  }

  async put(record: StagedVolume): Promise<void> {
    await ensurePrivateDir(this.dir);
    const final = this.file(record.volumeId);
    const temp = `${final}.${randomUUID()}.tmp`;
    const fh = await open(temp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify({ ...record, updatedAt: new Date().toISOString() }, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(temp, final);
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw err;
    }
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async remove(volumeId: string): Promise<void> {
    await unlink(this.file(volumeId)).catch((err: unknown) => {
      if (!hasCode(err, 'ENOENT')) throw err;
    });
  }

  /** Every record (for stats by path and for operators). */
  async list(): Promise<StagedVolume[]> {
    const names = await readdir(this.dir).catch((err: unknown) => {
      if (hasCode(err, 'ENOENT')) return [] as string[];
      throw err;
    });
    const out: StagedVolume[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const text = await readFile(join(this.dir, name), 'utf8').catch(() => null);
      if (text === null) continue;
      const parsed = stagedVolumeSchema.safeParse(parseJson(text));
      if (parsed.success) out.push(parsed.data);
    }
    return out;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
