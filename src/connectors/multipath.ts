/**
 * dm-multipath maps over the SCSI disks of one LUN, made and removed with multipath-tools.
 * The maps are found through sysfs (`/sys/block/dm-N/dm/uuid` starts with `mpath-`, `slaves/`
 * lists the paths), never by name, so `user_friendly_names` and aliases do not matter.
 */
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandRunner } from '../exec/runner.js';
import { backendFailure, timeout } from '../util/errors.js';

const sysBlock = (name: string, file: string) => `/sys/block/${name}/${file}`;

async function read(path: string): Promise<string | null> {
  return readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => null,
  );
}

/** True when `dm` (e.g. `dm-3`) is a multipath map. */
export async function isMultipathMap(dm: string): Promise<boolean> {
  return /^dm-\d+$/.test(dm) && ((await read(sysBlock(dm, 'dm/uuid'))) ?? '').startsWith('mpath-');
}

/** The paths (`sdX`) under multipath map `dm`. */
export async function mapPaths(dm: string): Promise<string[]> {
  return readdir(sysBlock(dm, 'slaves')).catch(() => []);
}

/** The multipath maps (`dm-N`) that hold disk `sd`. */
export async function multipathHolders(sd: string): Promise<string[]> {
  const holders = await readdir(sysBlock(sd, 'holders')).catch(() => [] as string[]);
  const maps: string[] = [];
  for (const h of holders) if (await isMultipathMap(h)) maps.push(h);
  return maps;
}

/**
 * Makes (or completes) the multipath map over `disks`, all paths to one LUN, and returns it
 * (`dm-N`). `multipath -a` records the WWID first: with Debian's default
 * `find_multipaths strict`, multipath maps only the WWIDs it has recorded. Then `multipath
 * /dev/sdX` for each path: naming the device works even where udev has not seen the disks (a
 * bare `multipath` only considers devices udev initialized).
 */
export async function createMultipathMap(
  runner: CommandRunner,
  disks: readonly string[],
  deadline: number,
): Promise<string> {
  const first = disks[0];
  if (!first) throw backendFailure('no disk to make a multipath map of');
  const left = () => Math.max(1_000, deadline - Date.now());
  const readOnly = await Promise.all(disks.map(async (d) => (await read(sysBlock(d, 'ro'))) === '1'));
  if (readOnly.every(Boolean)) {
    await createReadOnlyMap(runner, disks, Math.min(60_000, left()));
  } else {
    await runner.run(['multipath', '-a', `/dev/${first}`], {
      root: true,
      timeoutMs: Math.min(30_000, left()),
    });
    for (const sd of disks) {
      await runner.run(['multipath', `/dev/${sd}`], { root: true, timeoutMs: Math.min(60_000, left()) });
    }
  }
  for (;;) {
    const maps = await multipathHolders(first);
    for (const dm of maps) {
      const paths = await mapPaths(dm);
      if (disks.every((d) => paths.includes(d))) return dm;
    }
    if (Date.now() > deadline) {
      throw timeout(
        `multipath made no map over ${disks.join(', ')} (maps holding ${first}: ${maps.join(', ') || 'none'}); check multipath.conf (blacklist, find_multipaths)`,
      );
    }
    await sleep(200);
  }
}

/**
 * A read-only multipath map over read-only paths (a write-protected LUN). multipath-tools loads
 * every map read-write, which the kernel refuses for read-only paths ("reload ioctl failed:
 * Read-only file system"; only multipathd with udev retries read-only), so the table is loaded
 * here with `dmsetup --readonly`: one round-robin group over all paths, queueing while none
 * is left, like multipath's own. The uuid starts with `mpath-` so it is found and removed as
 * any other map.
 */
async function createReadOnlyMap(
  runner: CommandRunner,
  disks: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const first = disks[0]!;
  const wwid = (await read(`/sys/block/${first}/device/wwid`)) ?? first;
  const name = `cairn-ro-${wwid.replace(/[^A-Za-z0-9]/g, '').slice(0, 64)}`;
  const sectors = await read(sysBlock(first, 'size'));
  const devs = await Promise.all(disks.map((d) => read(sysBlock(d, 'dev'))));
  if (!sectors || devs.some((d) => !d)) throw backendFailure(`the paths ${disks.join(', ')} vanished`);
  const paths = devs.map((d) => `${d} 1000`).join(' ');
  const table = `0 ${sectors} multipath 1 queue_if_no_path 0 1 1 round-robin 0 ${disks.length} 1 ${paths}`;
  await runner.run(['dmsetup', 'create', name, '--readonly', '--uuid', `mpath-${name}`, '--table', table], {
    root: true,
    timeoutMs,
  });
}

/**
 * Removes multipath map `dm` (its paths stay). With `force`, queued I/O is failed first
 * (`fail_if_no_path`) so a map whose paths are all dead does not block the removal, and
 * `dmsetup remove --force` is the last resort.
 */
export async function removeMultipathMap(runner: CommandRunner, dm: string, force: boolean): Promise<void> {
  const name = await read(sysBlock(dm, 'dm/name'));
  if (name === null || !(await isMultipathMap(dm))) return;
  const opts = { root: true, timeoutMs: 60_000 };
  if (force) await failQueuedIo(runner, dm);
  try {
    // A read-only map made by createReadOnlyMap is not multipath-tools': dmsetup removes it.
    const argv = name.startsWith('cairn-ro-')
      ? ['dmsetup', 'remove', '--retry', name]
      : ['multipath', '-f', name];
    await runner.run(argv, opts);
  } catch (err) {
    if (!force) throw err;
    await runner.run(['dmsetup', 'remove', '--force', '--retry', name], opts).catch(() => {});
    if (await isMultipathMap(dm)) throw err;
  }
}

/**
 * Makes map `dm` fail I/O when no path is left instead of queueing it (`queue_if_no_path`), so
 * a flush or a removal cannot hang on a map whose target is gone. Best effort.
 */
export async function failQueuedIo(runner: CommandRunner, dm: string): Promise<void> {
  const name = await read(sysBlock(dm, 'dm/name'));
  if (name === null) return;
  await runner
    .run(['dmsetup', 'message', name, '0', 'fail_if_no_path'], { root: true, timeoutMs: 30_000 })
    .catch(() => {});
}

/**
 * Makes multipath map `dm` take the size its paths now have (rescan them first). multipathd
 * does it when it runs (`resize map`); without it, `multipath -r` reloads the map's table.
 */
export async function resizeMultipathMap(runner: CommandRunner, dm: string): Promise<void> {
  const name = await read(sysBlock(dm, 'dm/name'));
  if (name === null) throw backendFailure(`multipath map ${dm} is gone`);
  const opts = { root: true, timeoutMs: 60_000 };
  const daemon = await runner
    .run(['multipathd', 'show', 'daemon'], { ...opts, okExitCodes: [0, 1] })
    .catch(() => null);
  if (daemon?.exitCode === 0 && /pid \d+/.test(daemon.stdout)) {
    const r = await runner.run(['multipathd', 'resize', 'map', name], opts);
    if (!/^ok/m.test(r.stdout)) throw backendFailure(`multipathd resize map ${name}: ${r.stdout.trim()}`);
    return;
  }
  await runner.run(['multipath', '-r', name], opts);
}
