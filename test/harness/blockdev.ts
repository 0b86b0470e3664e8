import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { basename } from 'node:path';

export const MiB = 1024 * 1024;

/** `length` bytes that depend on `seed` (so two patterns never match by accident). */
export function pattern(seed: string, length = MiB): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < length; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** Writes `data` at each offset of a block device (or file) and flushes it to the device. */
export async function writeAt(device: string, offsets: readonly number[], data: Buffer): Promise<void> {
  const fh = await open(device, 'r+');
  try {
    for (const offset of offsets) {
      const { bytesWritten } = await fh.write(data, 0, data.length, offset);
      if (bytesWritten !== data.length) throw new Error(`short write at ${offset}: ${bytesWritten}`);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Reads `length` bytes at `offset`. */
export async function readAt(device: string, offset: number, length = MiB): Promise<Buffer> {
  const fh = await open(device, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A block device's size as the kernel sees it: /sys/class/block/NAME/size × 512. */
export async function kernelDeviceSize(device: string): Promise<number> {
  const sectors = await readFile(`/sys/class/block/${basename(device)}/size`, 'utf8');
  return Number(sectors.trim()) * 512;
}

/** The backing file of a loop device from sysfs, or null when it is not attached. */
export async function loopBackingFile(device: string): Promise<string | null> {
  const text = await readFile(`/sys/class/block/${basename(device)}/loop/backing_file`, 'utf8').catch(
    () => null,
  );
  return text === null ? null : text.trim();
}
