/** `cairn snapshot …`: point-in-time copies of volumes, and restoring them as new volumes. */
import type { Command } from 'commander';
import { collectKeyValue } from '../args.js';
import { forEachRef } from '../batch.js';
import { formatTable } from '../output.js';
import { withCairn } from '../run.js';
import { snapshotColumns, snapshotView, volumeView } from '../views.js';
import { type DerivedOptions, defined, derivedOptions, SIZE_HELP, withCopyProgress } from './shared.js';

export function registerSnapshot(program: Command): void {
  const snapshot = program.command('snapshot').description('snapshots of volumes');

  snapshot
    .command('create')
    .description('take a snapshot of a volume')
    .argument('<volume>', 'volume id or name')
    .option('--name <name>', 'a name, unique on its backend')
    .option('--description <text>', 'free text')
    .option('--metadata <key=value>', 'a metadata entry (repeatable)', collectKeyValue)
    .option('--id <id>', 'choose the id (default: a new UUID)')
    .action(
      withCairn<{ name?: string; description?: string; metadata?: Record<string, string>; id?: string }>(
        async (ctx, { args, opts, out }) => {
          const vol = await ctx.volume(args[0] as string);
          const snap = await vol.createSnapshot(
            defined({ name: opts.name, description: opts.description, metadata: opts.metadata, id: opts.id }),
          );
          out.result(snap, () => snapshotView(snap.record));
        },
      ),
    );

  snapshot
    .command('list')
    .description('list snapshots, oldest first')
    .option('--volume <ref>', 'only snapshots of this volume (id or name)')
    .action(
      withCairn<{ volume?: string }>(async (ctx, { opts, out }) => {
        const volumeId = opts.volume === undefined ? undefined : (await ctx.cairn.volume(opts.volume)).id;
        const snaps = await ctx.cairn.snapshots(defined({ volumeId }));
        out.result(snaps, () =>
          snaps.length === 0
            ? ''
            : formatTable(
                snapshotColumns,
                snaps.map((s) => s.record),
              ),
        );
        if (snaps.length === 0) out.note('no snapshots');
      }),
    );

  snapshot
    .command('show')
    .description('show a snapshot')
    .argument('<ref>', 'snapshot id or name')
    .action(
      withCairn(async (ctx, { args, out }) => {
        const snap = await ctx.cairn.snapshot(args[0] as string);
        out.result(snap, () => snapshotView(snap.record));
      }),
    );

  snapshot
    .command('delete')
    .description('delete snapshots')
    .argument('<ref...>', 'snapshot ids or names')
    .action(
      withCairn(async (ctx, { args, out }) => {
        await forEachRef(
          args[0] as string[],
          out,
          async (ref) => {
            const snap = await ctx.snapshot(ref);
            await snap.delete();
            return snap;
          },
          (done) =>
            out.result({ deleted: done.map((s) => s.id) }, () =>
              done.map((s) => `deleted snapshot ${s.id}${s.name ? ` (${s.name})` : ''}`).join('\n'),
            ),
        );
      }),
    );

  snapshot
    .command('restore')
    .description("create a new volume holding a snapshot's data")
    .argument('<ref>', 'snapshot id or name')
    .option('--name <name>', 'name of the new volume')
    .option('--size <size>', `size of the new volume (default: the snapshot's): ${SIZE_HELP}`)
    .option('--description <text>', 'free text')
    .option('--metadata <key=value>', 'a metadata entry (repeatable)', collectKeyValue)
    .action(
      withCairn<DerivedOptions>(async (ctx, { args, opts, out }) => {
        const snap = await ctx.snapshot(args[0] as string);
        const vol = await withCopyProgress(`restoring ${snap.name ?? snap.id}`, out.json, (onProgress) =>
          snap.createVolume({ ...derivedOptions(opts), ...defined({ onProgress }) }),
        );
        out.result(vol, () => volumeView(vol.record));
      }),
    );
}
