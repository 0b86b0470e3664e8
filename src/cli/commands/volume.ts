/** `cairn volume …`: create, inspect, copy, grow, delete, attach and export volumes. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { HostConnector } from '../../core/records.js';
import type { Volume } from '../../core/volume.js';
import { invalidArgument, invalidState, notFound } from '../../util/errors.js';
import { collectKeyValue } from '../args.js';
import { forEachRef } from '../batch.js';
import { formatTable } from '../output.js';
import { withCairn } from '../run.js';
import { connectionView, volumeColumns, volumeView } from '../views.js';
import {
  type DerivedOptions,
  defined,
  derivedOptions,
  readStdin,
  SIZE_HELP,
  withCopyProgress,
} from './shared.js';

export function registerVolume(program: Command): void {
  const volume = program.command('volume').description('block volumes');
  const label = (v: Volume) => v.name ?? v.id;

  volume
    .command('create')
    .description('create an empty volume')
    .requiredOption('--size <size>', SIZE_HELP)
    .option('--name <name>', 'a name, unique on its backend (letters, digits and ._:@+-)')
    .option('--backend <name>', 'backend to create it on (default: the default backend)')
    .option('--description <text>', 'free text')
    .option('--metadata <key=value>', 'a metadata entry (repeatable)', collectKeyValue)
    .option('--id <id>', 'choose the id (default: a new UUID)')
    .option('--extra-spec <key=value>', 'a backend-specific option (repeatable)', collectKeyValue)
    .option('--multiattach', 'allow several connections at once (backends with multi-attach)')
    .action(
      withCairn<{
        size: string;
        name?: string;
        backend?: string;
        description?: string;
        metadata?: Record<string, string>;
        id?: string;
        extraSpec?: Record<string, string>;
        multiattach?: boolean;
      }>(async (ctx, { opts, out }) => {
        const backend = await ctx.backend(opts.backend);
        const vol = await backend.createVolume({
          size: opts.size,
          ...defined({
            name: opts.name,
            description: opts.description,
            metadata: opts.metadata,
            id: opts.id,
            extraSpecs: opts.extraSpec,
            multiattach: opts.multiattach,
          }),
        });
        out.result(vol, () => volumeView(vol.record));
      }),
    );

  volume
    .command('list')
    .description('list volumes, oldest first')
    .option('--backend <name>', 'only volumes on this backend')
    .option('--name <name>', 'only volumes with this name')
    .action(
      withCairn<{ backend?: string; name?: string }>(async (ctx, { opts, out }) => {
        const vols = await ctx.cairn.volumes(defined({ backend: opts.backend, name: opts.name }));
        out.result(vols, () =>
          vols.length === 0
            ? ''
            : formatTable(
                volumeColumns,
                vols.map((v) => v.record),
              ),
        );
        if (vols.length === 0) out.note('no volumes');
      }),
    );

  volume
    .command('show')
    .description('show a volume and its connections')
    .argument('<ref>', 'volume id or name')
    .action(
      withCairn(async (ctx, { args, out }) => {
        const vol = await ctx.cairn.volume(args[0] as string);
        const connections = await vol.connections();
        out.result(vol, () =>
          volumeView(
            vol.record,
            connections.map((c) => c.toJSON()),
          ),
        );
      }),
    );

  volume
    .command('clone')
    .description("create a volume holding a copy of another volume's data")
    .argument('<ref>', 'source volume id or name')
    .option('--name <name>', 'name of the new volume')
    .option('--size <size>', `size of the new volume (default: the source's): ${SIZE_HELP}`)
    .option('--description <text>', 'free text')
    .option('--metadata <key=value>', 'a metadata entry (repeatable)', collectKeyValue)
    .action(
      withCairn<DerivedOptions>(async (ctx, { args, opts, out }) => {
        const source = await ctx.volume(args[0] as string);
        const vol = await withCopyProgress(`cloning ${label(source)}`, out.json, (onProgress) =>
          source.clone({ ...derivedOptions(opts), ...defined({ onProgress }) }),
        );
        out.result(vol, () => volumeView(vol.record));
      }),
    );

  volume
    .command('extend')
    .description('grow a volume (an attached device on this host grows with it)')
    .argument('<ref>', 'volume id or name')
    .argument('<size>', `the new size: ${SIZE_HELP}`)
    .action(
      withCairn(async (ctx, { args, out }) => {
        const vol = await ctx.volume(args[0] as string);
        await vol.extend(args[1] as string);
        out.result(vol, () => volumeView(vol.record));
      }),
    );

  volume
    .command('revert')
    .description("roll a detached volume's data back to one of its snapshots, in place")
    .argument('<ref>', 'volume id or name')
    .argument('<snapshot>', 'snapshot id or name (a snapshot of this volume)')
    .action(
      withCairn(async (ctx, { args, out }) => {
        const vol = await ctx.volume(args[0] as string);
        const snap = await ctx.snapshot(args[1] as string);
        await vol.revertToSnapshot(snap);
        out.result(vol, () => volumeView(vol.record));
      }),
    );

  volume
    .command('manage')
    .description('adopt an object that exists on the backend (an RBD image, a file in the pool) as a volume')
    .argument('<reference>', "the object's name on the backend; it is renamed to the volume's")
    .option('--name <name>', 'a name, unique on its backend (letters, digits and ._:@+-)')
    .option('--backend <name>', 'backend that holds it (default: the default backend)')
    .option('--description <text>', 'free text')
    .option('--metadata <key=value>', 'a metadata entry (repeatable)', collectKeyValue)
    .option('--id <id>', 'choose the id (default: a new UUID)')
    .action(
      withCairn<{
        name?: string;
        backend?: string;
        description?: string;
        metadata?: Record<string, string>;
        id?: string;
      }>(async (ctx, { args, opts, out }) => {
        const backend = await ctx.backend(opts.backend);
        const vol = await backend.manageVolume({
          reference: args[0] as string,
          ...defined({
            name: opts.name,
            description: opts.description,
            metadata: opts.metadata,
            id: opts.id,
          }),
        });
        out.result(vol, () => volumeView(vol.record));
      }),
    );

  volume
    .command('unmanage')
    .description('forget a volume but keep its data on the backend; prints the name it has there')
    .argument('<ref>', 'volume id or name')
    .action(
      withCairn(async (ctx, { args, out }) => {
        const vol = await ctx.volume(args[0] as string);
        const reference = await vol.unmanage();
        out.result(
          { unmanaged: vol.id, reference },
          () => `unmanaged volume ${vol.id}; it stays on backend ${vol.backendName} as ${reference}`,
        );
      }),
    );

  volume
    .command('delete')
    .description('delete volumes (refused while they have snapshots or connections)')
    .argument('<ref...>', 'volume ids or names')
    .option('--force', 'also delete a volume stuck in a transitional state (creating, extending, deleting)')
    .action(
      withCairn<{ force?: boolean }>(async (ctx, { args, opts, out }) => {
        await forEachRef(
          args[0] as string[],
          out,
          async (ref) => {
            const vol = await ctx.volume(ref);
            await vol.delete({ force: opts.force === true });
            return vol;
          },
          (done) =>
            out.result({ deleted: done.map((v) => v.id) }, () =>
              done.map((v) => `deleted volume ${v.id}${v.name ? ` (${v.name})` : ''}`).join('\n'),
            ),
        );
      }),
    );

  volume
    .command('attach')
    .description('attach a volume to this host as a block device and print its path')
    .argument('<ref>', 'volume id or name')
    .option('--ro', 'read-only')
    .action(
      withCairn<{ ro?: boolean }>(async (ctx, { args, opts, out }) => {
        const vol = await ctx.volume(args[0] as string);
        const conn = await vol.attach({ mode: opts.ro ? 'ro' : 'rw' });
        out.result(conn, conn.path ?? '');
      }),
    );

  volume
    .command('detach')
    .description("detach a volume's block device from this host and remove its connection")
    .argument('<ref>', 'volume id or name')
    .option('--force', 'detach even while the device is mounted or held')
    .action(
      withCairn<{ force?: boolean }>(async (ctx, { args, opts, out }) => {
        const vol = await ctx.volume(args[0] as string);
        await vol.detach({ force: opts.force === true });
        out.result(vol, `detached volume ${label(vol)}`);
      }),
    );

  volume
    .command('connect')
    .description('export a volume to a host (default: this one) and print the connection')
    .argument('<ref>', 'volume id or name')
    .option(
      '--connector <file-or-json>',
      "the host's connector properties: a JSON file, - for stdin, or inline JSON",
    )
    .option('--ro', 'read-only')
    .option('--show-secrets', 'include secrets (e.g. CHAP passwords) of the connection info')
    .action(
      withCairn<{ connector?: string; ro?: boolean; showSecrets?: boolean }>(
        async (ctx, { args, opts, out }) => {
          const vol = await ctx.volume(args[0] as string);
          const connector = opts.connector
            ? await readConnector(opts.connector)
            : await ctx.cairn.hostConnector();
          const conn = await vol.connect(connector, { mode: opts.ro ? 'ro' : 'rw' });
          const record = conn.toJSON({ includeSecrets: opts.showSecrets === true });
          out.result(record, () => connectionView(record));
        },
      ),
    );

  volume
    .command('disconnect')
    .description('remove a connection of a volume (detaching its device first if attached here)')
    .argument('<ref>', 'volume id or name')
    .option('--connection <id>', 'which connection (needed when the volume has several)')
    .option('--force', 'detach even while the device is mounted or held')
    .action(
      withCairn<{ connection?: string; force?: boolean }>(async (ctx, { args, opts, out }) => {
        const vol = await ctx.volume(args[0] as string);
        const connections = await vol.connections();
        let target = connections[0];
        if (opts.connection) {
          target = connections.find((c) => c.id === opts.connection);
          if (!target) throw notFound(`volume ${vol.id} has no connection ${opts.connection}`);
        } else if (connections.length === 0) {
          throw invalidState(`volume ${vol.id} is not connected to any host`);
        } else if (connections.length > 1) {
          throw invalidArgument(
            `volume ${vol.id} has ${connections.length} connections (${connections.map((c) => `${c.id} to ${c.host}`).join(', ')}); choose one with --connection`,
          );
        }
        await vol.disconnect(target!, { force: opts.force === true });
        out.result(vol, `disconnected volume ${label(vol)} from ${target!.host} (connection ${target!.id})`);
      }),
    );
}

/** A host connector from inline JSON, a JSON file, or stdin (`-`). */
async function readConnector(source: string): Promise<HostConnector> {
  let text = source;
  if (!source.trimStart().startsWith('{')) {
    try {
      text = source === '-' ? await readStdin() : await readFile(source, 'utf8');
    } catch (err) {
      throw invalidArgument(`--connector: cannot read ${source}: ${(err as Error).message}`, { cause: err });
    }
  }
  try {
    return JSON.parse(text) as HostConnector;
  } catch (err) {
    throw invalidArgument(`--connector: not JSON: ${(err as Error).message}`);
  }
}
