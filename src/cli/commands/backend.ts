/** `cairn backend …`: the configured backends, what they can do and how full they are. */
import type { Command } from 'commander';
import type { BackendStats } from '../../drivers/spi.js';
import type { CliContext } from '../config.js';
import { ReportedError, reportError } from '../errors.js';
import { formatTable } from '../output.js';
import { withCairn } from '../run.js';
import { capabilitiesSummary, statsColumns } from '../views.js';

export function registerBackend(program: Command): void {
  const backend = program.command('backend').description('configured storage backends');

  backend
    .command('list')
    .description('list the configured backends: name, driver and capabilities')
    .action(
      withCairn(async (ctx, { out }) => {
        const slots = await ctx.backends();
        const isDefault = (name: string) => name === ctx.config.defaultBackend;
        out.result(
          slots.map((s) =>
            s.backend
              ? {
                  name: s.name,
                  driver: s.driver,
                  default: isDefault(s.name),
                  capabilities: s.backend.capabilities,
                  config: s.backend.toJSON(),
                }
              : { name: s.name, driver: s.driver, default: isDefault(s.name), error: s.error.toJSON() },
          ),
          () =>
            formatTable(
              [
                { header: 'name', value: (s) => (isDefault(s.name) ? `${s.name} (default)` : s.name) },
                { header: 'driver', value: (s) => s.driver },
                {
                  header: 'capabilities',
                  value: (s) =>
                    s.backend ? capabilitiesSummary(s.backend.capabilities) : 'UNAVAILABLE (see below)',
                },
              ],
              slots,
            ),
        );
        // A broken backend is listed, then explained; the exit code is the first failure's.
        const broken = slots.filter((s) => s.error);
        let exitCode = 0;
        for (const s of broken) {
          const code = reportError(s.error, { json: out.json, debug: false });
          exitCode ||= code;
        }
        if (exitCode) throw new ReportedError(exitCode);
      }),
    );

  backend
    .command('stats')
    .description('capacity and usage: total, free, provisioned, allocated, thin/thick, counts')
    .argument('[name]', 'a backend (default: every configured backend)')
    .action(
      withCairn(async (ctx, { args, out }) => {
        const [name] = args as [string | undefined];
        const backends = name ? [await ctx.backend(name)] : await openAll(ctx);
        const rows: Array<BackendStats & { backend: string }> = [];
        for (const b of backends) rows.push({ backend: b.name, ...(await b.stats()) });
        out.result(name ? rows[0] : rows, () => formatTable(statsColumns, rows));
      }),
    );
}

/** Every configured backend; fails with the first one that can't be opened. */
async function openAll(ctx: CliContext) {
  const slots = await ctx.backends();
  const failed = slots.find((s) => s.error);
  if (failed?.error) throw failed.error;
  return slots.map((s) => s.backend!);
}
