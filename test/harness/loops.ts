import { realpath } from 'node:fs/promises';
import { run } from './exec.js';

/** A loop device as `losetup -J -l` reports it. */
export interface LoopDevice {
  name: string;
  backFile: string;
  readOnly: boolean;
}

interface LosetupJson {
  loopdevices?: Array<{ name: string; 'back-file'?: string | null; ro?: boolean | string }>;
}

/**
 * Every attached loop device on the host. Parsed here rather than with src/parse/losetup.ts:
 * this is how tests check the code under test for leaks, so it does not share its parser.
 */
export async function listLoops(): Promise<LoopDevice[]> {
  const out = await run(['losetup', '--json', '--list']);
  // losetup prints nothing at all (not an empty list) on some versions when no device is set up.
  if (out.trim() === '') return [];
  const parsed = JSON.parse(out) as LosetupJson;
  return (parsed.loopdevices ?? []).map((d) => ({
    name: d.name,
    backFile: (d['back-file'] ?? '').replace(/ \(deleted\)$/, ''),
    readOnly: d.ro === true || d.ro === '1',
  }));
}

/** Loop devices whose backing file lies under `dir` (compared after resolving symlinks). */
export async function loopsUnder(dir: string): Promise<LoopDevice[]> {
  const root = `${(await realpath(dir).catch(() => dir)).replace(/\/+$/, '')}/`;
  return (await listLoops()).filter((d) => d.backFile.startsWith(root));
}

/** Detaches every loop device backed by a file under `dir`; returns their names. Best effort. */
export async function detachLoopsUnder(dir: string): Promise<string[]> {
  const loops = await loopsUnder(dir);
  for (const d of loops) await run(['losetup', '--detach', d.name]).catch(() => {});
  return loops.map((d) => d.name);
}
