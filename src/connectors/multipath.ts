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
  await runner.run(['multipath', '-a', `/dev/${first}`], { root: true, timeoutMs: Math.min(30_000, left()) });
  for (const sd of disks) {
    await runner.run(['multipath', `/dev/${sd}`], { root: true, timeoutMs: Math.min(60_000, left()) });
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
    await runner.run(['multipath', '-f', name], opts);
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
