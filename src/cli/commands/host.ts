/** `cairn host …`: facts about this host. Needs no configuration or state store. */
import type { Command } from 'commander';
import { formatFields } from '../output.js';
import { withOutput } from '../run.js';

export function registerHost(program: Command): void {
  const host = program.command('host').description('this host');

  host
    .command('connector')
    .description(
      "print this host's connector properties (what a backend needs to export a volume here; " +
        'with --json, the input of `volume connect --connector` on another host)',
    )
    .option('--multipath', 'declare that this host uses multipath')
    .action(
      withOutput<{ multipath?: boolean }>(async ({ opts, out }) => {
        const { localHostConnector } = await import('../../connectors/host.js');
        const connector = await localHostConnector({ multipath: opts.multipath === true });
        out.result(connector, () =>
          formatFields(Object.entries(connector).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v])),
        );
      }),
    );
}
