// Helpers shared by the guest-side scenario files (*.guest.ts): volumes as plain files for an
// exporter, and direct-I/O round trips through a device.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExportTarget } from '../../../src/exports/spi.js';
import { run } from '../../harness/exec.js';

const MiB = 1024 * 1024;

/** A sparse file of `size` bytes under `dir`, as an exporter's target. */
export async function fileVolume(dir: string, size: number): Promise<ExportTarget> {
  const volumeId = randomUUID();
  const path = join(dir, `volume-${volumeId}`);
  await writeFile(path, '');
  await truncate(path, size);
  return { volumeId, path, size };
}

/**
 * 1 MiB of random data to `device` at `offsetMiB` with O_DIRECT (so the page cache can't answer),
 * read back the same way and compared; the scratch files live under `dir`.
 */
export async function roundTrip(dir: string, device: string, offsetMiB: number): Promise<Buffer> {
  const pattern = randomBytes(MiB);
  const src = join(dir, `pattern-${randomUUID()}`);
  const back = `${src}.back`;
  await writeFile(src, pattern);
  const direct = ['bs=1M', 'status=none'];
  await run(
    ['dd', `if=${src}`, `of=${device}`, `seek=${offsetMiB}`, 'oflag=direct', 'conv=notrunc,fsync', ...direct],
    { timeoutMs: 120_000 },
  );
  await run(['dd', `if=${device}`, `of=${back}`, `skip=${offsetMiB}`, 'count=1', 'iflag=direct', ...direct], {
    timeoutMs: 120_000,
  });
  assert.ok((await readFile(back)).equals(pattern), `the data read back from ${device} differs`);
  await unlink(src);
  await unlink(back);
  return pattern;
}
