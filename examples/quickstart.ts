/**
 * Quickstart: the whole life of a volume on the embedded default — a `file` backend and a
 * SQLite state file in the user's data directory. Run it with `npm run quickstart` (as root,
 * or as a user allowed to run `sudo -n losetup`).
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Cairn, defaultDataDir, formatSize } from '../src/index.js';

const dataDir = defaultDataDir();
const step = (what: string) => console.log(`• ${what}`);

const cairn = await Cairn.open({
  state: `sqlite:${join(dataDir, 'cairn.db')}`,
  rootHelper: process.getuid?.() === 0 ? [] : ['sudo', '-n'],
});
try {
  const pool = await cairn.addBackend('default', { driver: 'file', path: join(dataDir, 'volumes') });
  const caps = pool.capabilities;
  step(
    `backend "default": ${pool.toJSON().path} (${caps.thin ? 'thin' : 'thick'}, clones: ${caps.cloneSpeed})`,
  );

  const name = `quickstart-${Date.now()}`;
  const vol = await pool.createVolume({ size: '256MiB', name, metadata: { purpose: 'quickstart' } });
  step(`created volume ${vol.name} (${vol.id}), ${formatSize(vol.size)}, ${vol.status}`);

  const conn = await vol.attach();
  step(`attached at ${conn.path}`);
  const pattern = Buffer.alloc(1024 * 1024, 'cairn ');
  const dev = await open(conn.path!, 'r+');
  await dev.write(pattern, 0, pattern.length, 0);
  await dev.sync();
  await dev.close();
  step(`wrote ${formatSize(pattern.length)} to ${conn.path}`);
  await vol.detach();
  step('detached');

  const snap = await vol.createSnapshot({ name: `${name}-snap` });
  step(`snapshot ${snap.name} (${snap.id}) taken`);
  const clone = await vol.clone({ name: `${name}-clone` });
  step(`cloned to ${clone.name} (${clone.id})`);
  const restored = await snap.createVolume({ name: `${name}-restored`, size: '512MiB' });
  step(`restored the snapshot to ${restored.name}, ${formatSize(restored.size)}`);

  const check = await restored.attach({ mode: 'ro' });
  const ro = await open(check.path!, 'r');
  const back = Buffer.alloc(pattern.length);
  await ro.read(back, 0, back.length, 0);
  await ro.close();
  await restored.detach();
  step(
    `read back from the restored volume (read-only at ${check.path}): ${back.equals(pattern) ? 'data intact' : 'DATA DIFFERS'}`,
  );
  if (!back.equals(pattern)) process.exitCode = 1;

  await vol.extend('1GiB');
  step(`extended ${vol.name} to ${formatSize(vol.size)}`);

  const stats = await pool.stats();
  step(
    `backend: ${stats.volumeCount} volumes, ${stats.snapshotCount} snapshots, ${formatSize(stats.provisionedBytes)} provisioned, ${formatSize(stats.allocatedBytes ?? 0)} allocated, ${formatSize(stats.freeBytes)} free`,
  );

  await restored.delete();
  await clone.delete();
  await snap.delete();
  await vol.delete();
  step('deleted the volumes and the snapshot');
} finally {
  await cairn.close();
}
