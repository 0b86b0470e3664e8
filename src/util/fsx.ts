import { mkdir, open } from 'node:fs/promises';

/** Creates a directory (and parents) readable by its owner only. */
export async function ensurePrivateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
}

/** Creates `path` with mode 0600 if it does not exist yet; leaves an existing file alone. */
export async function ensurePrivateFile(path: string): Promise<void> {
  const fh = await open(path, 'a', 0o600);
  await fh.close();
}

/** True when `err` is a Node.js system error with this code. */
export function hasCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
