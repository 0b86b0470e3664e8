import { readFile } from 'node:fs/promises';
import { run } from './exec.js';

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Lazily unmounts everything below `dir` and returns what was there. Run it before stopping a
 * service a FUSE mount depends on: removing a directory that holds a mount whose daemon can no
 * longer answer would hang.
 */
export async function unmountAllUnder(dir: string): Promise<string[]> {
  const found = await mountsUnder(dir);
  for (const m of found) await run(['umount', '--lazy', m]).catch(() => {});
  return found;
}
