import { backendFailure } from '../util/errors.js';

/** One loop device as `losetup --json --list` reports it. */
export interface LoopDevice {
  /** e.g. `/dev/loop3` */
  name: string;
  /** The backing file, without the ` (deleted)` marker. */
  backingFile: string;
  /** True when the backing file was deleted while attached. */
  backingDeleted: boolean;
  readOnly: boolean;
  offset: number;
  sizeLimit: number;
}

/**
 * Parses `losetup --json --list [--associated FILE]`. losetup prints nothing at all when no
 * loop device exists, and an empty list when none matches a filter: both mean none.
 */
export function parseLosetupList(stdout: string): LoopDevice[] {
  if (stdout.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (err) {
    throw backendFailure(`losetup printed output that is not JSON: ${(err as Error).message}`);
  }
  const list = (parsed as { loopdevices?: unknown }).loopdevices;
  if (!Array.isArray(list)) throw backendFailure('losetup JSON has no "loopdevices" list');
  return list.map((d: Record<string, unknown>) => {
    const back = String(d['back-file'] ?? '');
    const deleted = back.endsWith(' (deleted)');
    return {
      name: String(d.name),
      backingFile: deleted ? back.slice(0, -' (deleted)'.length) : back,
      backingDeleted: deleted,
      readOnly: d.ro === true || d.ro === 1 || d.ro === '1',
      offset: Number(d.offset ?? 0),
      sizeLimit: Number(d.sizelimit ?? 0),
    };
  });
}
