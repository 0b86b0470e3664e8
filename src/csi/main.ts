#!/usr/bin/env node
/**
 * `cairn-csi`: the CSI plugin as a long-running process. Reads the configuration (see
 * config.ts), starts the server and runs until SIGTERM or SIGINT, which shut it down
 * gracefully; a second signal exits at once. A configuration or start-up failure prints one
 * line on stderr and exits with the CLI's exit code for the error (2 for a bad configuration).
 */
import { exitCodeFor } from '../cli/exit-codes.js';
import { CairnError, errorMessage, invalidArgument } from '../util/errors.js';
import { DEFAULT_ENDPOINT, DEFAULT_NODE_STATE_DIR, loadCsiConfig, TOPOLOGY_KEY } from './config.js';
import { cairnVersion } from './identity.js';
import { startCsiServer } from './server.js';

const HELP = `Usage: cairn-csi [--config FILE]

The Cairn CSI plugin (Container Storage Interface 1.12): Identity, Controller and Node services.

Options:
  --config FILE               YAML configuration, the cairn CLI's format (default: $CAIRN_CSI_CONFIG,
                              then $CAIRN_CONFIG, then the CLI's zero-config default)
  -V, --version               print the version
  -h, --help                  print this help

Environment:
  CSI_ENDPOINT                unix:///path/csi.sock or tcp://host:port (default ${DEFAULT_ENDPOINT})
  CAIRN_CSI_MODE                    controller | node | all (default all)
  CAIRN_CSI_DRIVER_NAME             plugin name (default csi.cairn.io)
  CAIRN_CSI_NODE_ID                 this node's id (default: the host name); topology ${TOPOLOGY_KEY}
  CAIRN_CSI_DEFAULT_FS              ext4 | xfs | btrfs, for mount volumes that name none (default ext4)
  CAIRN_CSI_MAX_VOLUMES_PER_NODE    0 = no limit (default 0)
  CAIRN_CSI_NODE_STATE_DIR          node plugin's state (default ${DEFAULT_NODE_STATE_DIR})
  CAIRN_CSI_CONCURRENCY             abort (a busy volume answers ABORTED) | queue (default abort)
  CAIRN_CSI_LOG_LEVEL               debug | info | warn | error (default info; debug with CAIRN_DEBUG=1)
  CAIRN_STATE, CAIRN_BACKEND  override the file's state and defaultBackend, as for the CLI`;

function parseArgs(argv: string[]): { configPath?: string; action?: 'help' | 'version' } {
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return { action: 'help' };
    if (arg === '-V' || arg === '--version') return { action: 'version' };
    if (arg === '--config') {
      const next = argv[++i];
      if (!next) throw invalidArgument('--config needs a file name');
      configPath = next;
    } else if (arg.startsWith('--config=')) {
      configPath = arg.slice('--config='.length);
    } else {
      throw invalidArgument(`unknown argument ${JSON.stringify(arg)} (see --help)`);
    }
  }
  return configPath === undefined ? {} : { configPath };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.action === 'help') {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  if (args.action === 'version') {
    process.stdout.write(`${cairnVersion()}\n`);
    return;
  }
  const config = await loadCsiConfig({ configPath: args.configPath, env: process.env });
  const server = await startCsiServer({ config });
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`cairn-csi: ${signal} again; exiting now\n`);
      process.exit(1);
    }
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`cairn-csi: shutdown failed: ${errorMessage(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`cairn-csi: ${errorMessage(err)}\n`);
  process.exitCode = err instanceof CairnError ? exitCodeFor(err.code) : 1;
});
