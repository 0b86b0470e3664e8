import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend, Cairn, OpenOptions, Volume } from '../../src/index.js';
import { loopBackingFile, MiB } from '../harness/blockdev.js';
import { loopsUnder } from '../harness/loops.js';

/** What a driver's test gives the suite: a real backend and how to look at it from outside. */
export interface DriverTestContext {
  /** Configuration of the backend under test, as passed to `cairn.addBackend` (with `driver`). */
  config: Record<string, unknown>;
  /** A valid configuration of another backend of this driver, on storage not used yet. */
  freshConfig(): Record<string, unknown>;
  /** A thick-provisioned backend of this driver (for the capacity cases). */
  thickConfig: Record<string, unknown>;
  /** Fields the driver's configuration requires. */
  requiredFields: readonly string[];
  /** Driver-specific wrong values: each must be refused with a message naming the field. */
  invalidFields: ReadonlyArray<readonly [field: string, value: unknown]>;
  /** The clone speed the backend must report, when the storage under it is known. */
  expectedCloneSpeed?: 'instant' | 'copy' | undefined;
  /**
   * Makes and inspects objects on the backend behind Cairn's back (for manage): `make` writes
   * `data` at offset 0 of a new object of `size` bytes named `reference`.
   */
  foreign?: {
    make(reference: string, data: Buffer, size: number): Promise<void>;
    exists(reference: string): Promise<boolean>;
    remove(reference: string): Promise<void>;
  };
  /** Everything the backends of this context keep on this host lies under this directory. */
  root: string;
  /**
   * How the suite sees the devices attaches make on this host. Default ({@link loopDevicesUnder}):
   * loop devices over files under `root`, one per attach (file, rbd through rbd-fuse).
   */
  localDevices?: LocalDevices;
  /** Extra options of the suite's `Cairn.open` (e.g. `multipath` for exports with two portals). */
  openOptions?: Pick<OpenOptions, 'multipath'>;
  /** Removes the storage (called after every loop device under `root` is detached). */
  cleanup(): Promise<void>;
}

/** The devices attaches make on this host, seen from outside Cairn. */
export interface LocalDevices {
  /** The devices attaches of the context's volumes hold now, as `device=backing`, sorted; none after detach. */
  held(): Promise<string[]>;
  /**
   * How many devices one read-write attach adds to `held()`: 1 for a loop device, 0 where attach
   * hands out the volume's own device (an LVM LV) and makes nothing.
   */
  perAttach: number;
  /** What backs `device` when it shows one of the context's volumes (a loop's file, an LV), else null. */
  backing(device: string): Promise<string | null>;
}

/** The default {@link LocalDevices}: loop devices backed by files under `root`. */
export function loopDevicesUnder(root: string): LocalDevices {
  return {
    held: async () => (await loopsUnder(root)).map((l) => `${l.name}=${l.backFile}`).sort(),
    perAttach: 1,
    backing: (device) => loopBackingFile(device),
  };
}

/** The context's {@link LocalDevices}. */
export const localDevices = (ctx: DriverTestContext): LocalDevices =>
  ctx.localDevices ?? loopDevicesUnder(ctx.root);

/** The running suite: one context, one Cairn, the backend under test. */
export interface DriverSuite {
  ctx: DriverTestContext;
  cairn: Cairn;
  backend: Backend;
  stateDir: string;
}

export { MiB };

/** Every file and directory under `dir`, relative, sorted. */
async function listTree(dir: string): Promise<string[]> {
  // A FUSE mount under `dir` (rbd-fuse) can fail a listing for a moment while its daemon is
  // busy: retried, and a listing that keeps failing is an error, never an empty tree.
  for (let attempt = 1; ; attempt++) {
    try {
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return entries.map((e) => relative(dir, join(e.parentPath, e.name))).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(dir)) return [];
      if (attempt >= 5) throw err;
      await sleep(200);
    }
  }
}

/**
 * Everything a failed call could have changed: records, backend stats counts, files under the
 * context's root and loop devices backed by them.
 */
export async function observe(s: DriverSuite, backend: Backend = s.backend) {
  const stats = await backend.stats();
  const records = async () => ({
    volumes: (await s.cairn.volumes()).map((v) => v.record),
    snapshots: (await s.cairn.snapshots()).map((x) => x.record),
    connections: (await s.cairn.connections()).map((c) => c.record),
  });
  return {
    ...(await records()),
    stats: {
      volumeCount: stats.volumeCount,
      snapshotCount: stats.snapshotCount,
      provisionedBytes: stats.provisionedBytes,
    },
    backends: s.cairn.backends.map((b) => b.name).sort(),
    files: await listTree(s.ctx.root),
    loops: await localDevices(s.ctx).held(),
  };
}

/** Asserts that `action` fails (as `check` verifies) and that nothing observable changed. */
export async function failsWithoutChange(
  s: DriverSuite,
  action: () => Promise<unknown>,
  check: (attempt: () => Promise<unknown>) => Promise<unknown>,
  backend?: Backend,
): Promise<void> {
  const before = await observe(s, backend);
  await check(action);
  assert.deepEqual(await observe(s, backend), before, 'a refused call must change nothing');
}

/** A new volume of `size` bytes (default 64 MiB) on the backend under test. */
export function volume(s: DriverSuite, size: number | string = 64 * MiB, name?: string): Promise<Volume> {
  return s.backend.createVolume(name === undefined ? { size } : { size, name });
}

/**
 * Removes every connection, snapshot and volume of the context, so each case starts empty.
 * Every step is tried; the first error is thrown at the end.
 */
export async function sweep(s: DriverSuite): Promise<void> {
  let first: unknown;
  const attempt = (p: Promise<unknown>) => p.catch((err) => (first ??= err));
  for (const c of await s.cairn.connections()) await attempt(c.disconnect({ force: true }));
  for (const snap of await s.cairn.snapshots()) await attempt(snap.delete());
  for (const v of await s.cairn.volumes()) await attempt(v.delete({ force: true }));
  for (const b of s.cairn.backends) if (b !== s.backend) await attempt(b.close());
  if (first !== undefined) throw first;
}
