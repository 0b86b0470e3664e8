/** `cairn state …`: back up and restore the state store as JSON (like cinderlib's dump/load). */
import { randomUUID } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { invalidArgument } from '../../util/errors.js';
import { plural } from '../output.js';
import { withCairn } from '../run.js';
import { readStdin } from './shared.js';

export function registerState(program: Command): void {
  const state = program.command('state').description('dump and load the state store');

  state
    .command('dump')
    .description("write every object (and the backends' configuration) as JSON; secrets are left out")
    .option('--output <file>', 'write to this file, created with mode 0600 (default: stdout)')
    .option('--include-secrets', 'include secrets (connection passwords, keys) in the dump')
    .action(
      withCairn<{ output?: string; includeSecrets?: boolean }>(async (ctx, { opts, out }) => {
        // The dump names the backends' configuration; one that can't be opened is left out
        // rather than failing the backup of everything else.
        for (const slot of await ctx.backends()) {
          if (slot.error) out.warn(`backend ${slot.name} is left out of the dump: ${slot.error.message}`);
        }
        const dump = await ctx.cairn.dump({ includeSecrets: opts.includeSecrets === true });
        const text = `${JSON.stringify(dump, null, 2)}\n`;
        if (opts.output === undefined || opts.output === '-') {
          process.stdout.write(text);
          return;
        }
        const file = resolve(opts.output);
        await writePrivateFile(file, text);
        const counts = {
          volumes: dump.volumes.length,
          snapshots: dump.snapshots.length,
          connections: dump.connections.length,
        };
        out.result(
          { output: file, ...counts },
          `wrote ${plural(counts.volumes, 'volume')}, ${plural(counts.snapshots, 'snapshot')} and ${plural(counts.connections, 'connection')} to ${file}`,
        );
      }),
    );

  state
    .command('load')
    .description('load a dump into the state store, replacing objects with the same ids')
    .argument('<file>', 'a file written by `cairn state dump`, or - for stdin')
    .action(
      withCairn(async (ctx, { args, out }) => {
        const file = args[0] as string;
        let text: string;
        try {
          text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
        } catch (err) {
          throw invalidArgument(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
        }
        const loaded = await ctx.cairn.load(text, { save: true });
        const objects = [...loaded.volumes, ...loaded.snapshots];
        const missing = [...new Set(objects.map((o) => o.backendName))].filter(
          (b) => !Object.hasOwn(ctx.config.backends, b),
        );
        for (const b of missing) {
          out.warn(`objects on backend "${b}" were loaded, but that backend is not configured here`);
        }
        const ids = {
          volumes: loaded.volumes.map((v) => v.id),
          snapshots: loaded.snapshots.map((s) => s.id),
          connections: loaded.connections.map((c) => c.id),
        };
        out.result(
          ids,
          `loaded ${plural(ids.volumes.length, 'volume')}, ${plural(ids.snapshots.length, 'snapshot')} and ${plural(ids.connections.length, 'connection')} into ${ctx.cairn.store.location}`,
        );
      }),
    );

  registerMaintenance(state);
}

/** `state check` and `state migrate`. */
function registerMaintenance(state: Command): void {
  state
    .command('check')
    .description(
      'compare the state store with each backend: orphans, dangling records, interrupted operations',
    )
    .option('--repair', 'recover interrupted operations and fix dangling records (orphans are only reported)')
    .option('--backend <name>', 'check this backend only')
    .action(
      withCairn<{ repair?: boolean; backend?: string }>(async (ctx, { opts, out }) => {
        const names = opts.backend ? [opts.backend] : Object.keys(ctx.config.backends);
        const reports = [];
        for (const name of names) {
          await ctx.backend(name);
          reports.push(...(await ctx.cairn.check({ backend: name, repair: opts.repair === true })));
        }
        const problems = reports.reduce(
          (n, r) => n + r.orphans.length + r.dangling.length + r.sizeMismatches.length,
          0,
        );
        const lines = reports.flatMap((r) => [
          `backend ${r.backend}: ${plural(r.orphans.length, 'orphan')}, ${plural(r.dangling.length, 'dangling record')}, ${plural(r.sizeMismatches.length, 'size mismatch').replace('mismatchs', 'mismatches')}`,
          ...r.orphans.map(
            (o) => `  orphan ${o.kind} ${o.id} (${o.size} bytes): on the backend, unknown to the state store`,
          ),
          ...r.dangling.map(
            (d) =>
              `  dangling ${d.kind} ${d.id}${d.name ? ` (${d.name})` : ''}, ${d.status}: gone from the backend`,
          ),
          ...r.sizeMismatches.map((m) => `  ${m.kind} ${m.id}: stored size ${m.stored}, actual ${m.actual}`),
          ...r.recovered.map((a) => `  recovered ${a.kind} ${a.id} (${a.found}): ${a.outcome}: ${a.message}`),
          ...r.repaired.map((a) => `  repaired ${a.kind} ${a.id}: ${a.action}`),
        ]);
        out.result(reports, lines.join('\n'));
        // Problems left after the check are worth a non-zero exit, for cron jobs and scripts.
        if (problems > 0 && !opts.repair) process.exitCode = 5;
      }),
    );

  state
    .command('migrate')
    .description('create or upgrade the state store schema (opening it does the same)')
    .action(
      withCairn(async (ctx, { out }) => {
        out.result(
          { state: ctx.cairn.store.location, migrated: true },
          `state store ${ctx.cairn.store.location} is up to date`,
        );
      }),
    );
}

/**
 * Writes `text` to `file` readable by its owner only. A temporary file in the same directory
 * is renamed over the target, so an existing dump is never left half-written, and the data is
 * never readable by others, not even for a moment.
 */
async function writePrivateFile(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${randomUUID()}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
