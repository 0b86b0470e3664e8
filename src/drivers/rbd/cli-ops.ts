import { parseCephDf, parseRbdChildren, parseRbdDu, parseRbdInfo, parseRbdList } from '../../parse/rbd.js';
import type { DriverContext } from '../spi.js';
import { type CephAccess, runCeph } from './cli.js';
import type { ImageSpec, RbdOps } from './ops.js';

const MiB = 1024 * 1024;

/** RBD operations through the `rbd` and `ceph` CLIs with `--format json` (the fallback path). */
export function cliOps(
  access: CephAccess,
  pool: string,
  namespace: string | undefined,
  ctx: DriverContext,
): RbdOps {
  const where = `${pool}${namespace ? `/${namespace}` : ''}`;
  const poolArgs = ['--pool', pool, ...(namespace ? ['--namespace', namespace] : [])];
  const specArgs = (s: ImageSpec) => ['--pool', s.pool, ...(s.namespace ? ['--namespace', s.namespace] : [])];
  const img = (name: string) => [...poolArgs, '--image', name];
  const mib = (bytes: number) => `${Math.ceil(bytes / MiB)}M`;
  const rbd = async (args: string[], what: string) => runCeph(ctx.runner, 'rbd', access, args, what);
  /** A command without output. Those that report progress get `--no-progress` after their words. */
  const q = (args: string[], what: string) => {
    const words = args[0] === 'snap' || args[0] === 'trash' ? 2 : 1;
    const command = args.slice(0, words).join(' ');
    const quiet = !['rename', 'clone', 'trash mv'].includes(command);
    return rbd(
      [...args.slice(0, words), ...(quiet ? ['--no-progress'] : []), ...args.slice(words)],
      what,
    ).then(() => {});
  };

  return {
    kind: 'cli',
    checkPool: () => rbd(['ls', ...poolArgs, '--format', 'json'], `pool ${where}`).then(() => {}),
    list: async () => parseRbdList(await rbd(['ls', '-l', ...poolArgs, '--format', 'json'], `pool ${where}`)),
    info: async (image) =>
      parseRbdInfo(await rbd(['info', ...img(image), '--format', 'json'], `image ${where}/${image}`)),
    infoOf: async (s) =>
      parseRbdInfo(
        await rbd(['info', ...specArgs(s), '--image', s.image, '--format', 'json'], `image ${s.image}`),
      ),
    create: (image, size, features) =>
      q(
        [
          'create',
          ...img(image),
          '--size',
          mib(size),
          ...(features?.length ? ['--image-feature', features.join(',')] : []),
        ],
        `image ${where}/${image}`,
      ),
    remove: (image) => q(['rm', ...img(image)], `image ${where}/${image}`),
    resize: (image, size) => q(['resize', ...img(image), '--size', mib(size)], `image ${where}/${image}`),
    rename: (from, to) => q(['rename', ...img(from), '--dest', to], `rename ${where}/${from} to ${to}`),
    snapCreate: (image, snap) =>
      q(['snap', 'create', ...img(image), '--snap', snap], `snapshot ${image}@${snap}`),
    snapRemove: (image, snap) =>
      q(['snap', 'rm', ...img(image), '--snap', snap], `snapshot ${image}@${snap}`),
    snapPurge: (image) => q(['snap', 'purge', ...img(image)], `snapshots of ${image}`),
    snapRollback: (image, snap) =>
      q(['snap', 'rollback', ...img(image), '--snap', snap], `roll back ${image} to ${snap}`),
    clone: (image, snap, dest, features) =>
      q(
        [
          'clone',
          ...img(image),
          '--snap',
          snap,
          '--dest-pool',
          pool,
          ...(namespace ? ['--dest-namespace', namespace] : []),
          '--dest',
          dest,
          ...(features?.length ? ['--image-feature', features.join(',')] : []),
        ],
        `clone ${where}/${image}@${snap} to ${dest}`,
      ),
    flatten: (s) => q(['flatten', ...specArgs(s), '--image', s.image], `flatten ${s.image}`),
    children: async (image) =>
      parseRbdChildren(
        await rbd(['children', '--all', ...img(image), '--format', 'json'], `children of ${image}`),
      ),
    trashMove: (image) => q(['trash', 'mv', ...img(image)], `image ${where}/${image}`),
    trashPurge: () =>
      q(['trash', 'purge', ...poolArgs], `trash of ${where}`).catch((err) =>
        ctx.logger.debug({ err: (err as Error).message }, 'rbd trash purge left images for later'),
      ),
    du: async () => parseRbdDu(await rbd(['du', ...poolArgs, '--format', 'json'], `pool ${where}`)),
    poolDf: async () =>
      parseCephDf(await runCeph(ctx.runner, 'ceph', access, ['df', '--format', 'json'], 'ceph df'), pool),
    close: async () => {},
  };
}
