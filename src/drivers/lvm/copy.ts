import { stat } from 'node:fs/promises';
import type { CommandRunner } from '../../exec/runner.js';
import { backendFailure } from '../../util/errors.js';
import type { ProgressFn } from '../spi.js';

const MiB = 1024 * 1024;
/** A copy runs as one `dd` per chunk: progress is reported between chunks, and each is bounded. */
const MIN_CHUNK = 256 * MiB;
const MAX_CHUNKS = 50;
/** Data moves at no less than this many bytes per second, or the command is killed. */
const MIN_RATE = 4 * MiB;
const slack = (bytes: number) => 60_000 + Math.ceil(bytes / MIN_RATE) * 1000;

/**
 * Zeroes `length` bytes of a block device from `offset` with BLKZEROOUT (`blkdiscard -z`): the
 * kernel offloads it where the device can (WRITE ZEROES, an unmap that reads back zeros) and
 * writes zeros otherwise. A new thick LV holds whatever its extents held before, maybe a
 * deleted volume's data: it is zeroed before anyone sees it.
 */
export async function zeroRange(
  runner: CommandRunner,
  device: string,
  offset: number,
  length: number,
): Promise<void> {
  if (length <= 0) return;
  await runner.run(
    ['blkdiscard', '--zeroout', '--offset', String(offset), '--length', String(length), device],
    {
      root: true,
      timeoutMs: slack(length),
    },
  );
}

/**
 * Copies the first `length` bytes of block device `src` to `dst` with `dd` (direct I/O, 1 MiB
 * blocks), in chunks so that progress is reported. With `sparse`, blocks of zeros are skipped
 * instead of written: only for a destination that reads as zeros already (a fresh, zeroed LV).
 */
export async function copyDevice(
  runner: CommandRunner,
  src: string,
  dst: string,
  length: number,
  opts: { sparse: boolean; onProgress?: ProgressFn | undefined },
): Promise<void> {
  const chunk = Math.max(MIN_CHUNK, Math.ceil(length / MAX_CHUNKS / MiB) * MiB);
  for (let done = 0; done < length; ) {
    const n = Math.min(chunk, length - done);
    const argv = [
      'dd',
      `if=${src}`,
      `of=${dst}`,
      'bs=1M',
      `skip=${done}`,
      `seek=${done}`,
      `count=${n}`,
      'iflag=direct,skip_bytes,count_bytes',
      'oflag=direct,seek_bytes',
      opts.sparse ? 'conv=notrunc,sparse' : 'conv=notrunc',
      'status=none',
    ];
    await runner.run(argv, { root: true, timeoutMs: slack(n) });
    done += n;
    opts.onProgress?.(Math.min(0.99, done / length));
  }
  opts.onProgress?.(1);
}

/**
 * Waits (up to `timeoutMs`) for an LV's device link to appear. Without udev, LVM makes the
 * /dev/<vg>/<lv> link itself before it returns; with udev it may lag behind a moment.
 */
export async function waitForDevice(path: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await stat(path).catch(() => null);
    if (s?.isBlockDevice()) return;
    if (Date.now() > deadline) throw backendFailure(`${path} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
