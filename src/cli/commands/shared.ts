/** Helpers shared by the command modules. */
import type { Volume } from '../../core/volume.js';
import { createProgressBar } from '../progress.js';

export const SIZE_HELP = 'bytes, or a size such as 10GiB, 512MiB, 1G (binary) or 1GB (decimal)';

export interface DerivedOptions {
  name?: string;
  size?: string;
  description?: string;
  metadata?: Record<string, string>;
}

/** Options for a new volume made from a source, without the ones not given. */
export function derivedOptions(o: DerivedOptions) {
  return defined({ name: o.name, size: o.size, description: o.description, metadata: o.metadata });
}

/** `obj` without its undefined fields: the library's option schemas are strict. */
export function defined<T extends Record<string, unknown>>(
  obj: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

/** Runs `make` (a clone or restore) with a progress bar on a terminal while data is copied. */
export async function withCopyProgress(
  label: string,
  json: boolean,
  make: (onProgress: ((f: number) => void) | undefined) => Promise<Volume>,
): Promise<Volume> {
  const bar = createProgressBar(label, { json });
  try {
    return await make(bar ? (f) => bar.update(f) : undefined);
  } finally {
    bar?.done();
  }
}

/** Everything on standard input, as text (for `-` arguments). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
