#!/usr/bin/env node
/**
 * The `cairn` command: builds the commander program and turns any failure into a message on
 * stderr and an exit code (see exit-codes.ts). Only commander and the command definitions load
 * at start-up; a command's action imports the library when it runs, so `cairn --help` and
 * usage errors are fast and never open the state store.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerBackend } from './commands/backend.js';
import { registerHost } from './commands/host.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerState } from './commands/state.js';
import { registerVolume } from './commands/volume.js';
import { debugEnabled } from './debug.js';
import { describeError, ReportedError, reportError } from './errors.js';
import { EXIT_CODES_HELP, EXIT_OK } from './exit-codes.js';

const ENVIRONMENT_HELP = `Configuration:
  --config FILE, $CAIRN_CONFIG  YAML file: state, backends, defaultBackend, rootHelper, lockDir, lockTimeoutMs
  $CAIRN_STATE                  state store URL (overrides the file): sqlite:PATH, sqlite::memory:, memory:
  $CAIRN_BACKEND                default backend (overrides the file)
  $CAIRN_DEBUG=1                log every OS command run, and print stack traces
  Without a file, state is kept in $XDG_DATA_HOME/cairn/cairn.db (default ~/.local/share/cairn)
  and volumes in the "default" backend, a file pool in .../cairn/volumes.`;

function buildProgram(json: boolean): Command {
  const program = new Command('cairn')
    .description('Block storage on any backend through one API: volumes, snapshots, attachments.')
    .version(packageVersion(), '-V, --version')
    .option('--json', 'machine-readable JSON on stdout; errors as {"error":{code,message}} on stderr')
    .option('--config <file>', 'configuration file (YAML); default: $CAIRN_CONFIG, else zero-config')
    // Settings made before subcommands are added are inherited by them.
    .exitOverride()
    .configureOutput({
      // With --json, stderr carries only JSON: commander's own messages are replaced by ours.
      writeErr: (s) => {
        if (!json) process.stderr.write(s);
      },
      outputError: (s, write) => {
        if (!json) write(s.replace(/^error: /, 'cairn: '));
      },
    })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}`);
  registerVolume(program);
  registerSnapshot(program);
  registerBackend(program);
  registerState(program);
  registerHost(program);
  return program;
}

/** `--json` is needed before parsing succeeds (to shape a usage error), so look for it early. */
function wantsJson(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    return String(pkg.version);
  } catch {
    return 'unknown';
  }
}

async function main(argv: string[]): Promise<number> {
  const json = wantsJson(argv.slice(2));
  const debug = debugEnabled();
  try {
    await buildProgram(json).parseAsync(argv);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof ReportedError) return err.exitCode;
    // Commander printed its usage error already, unless --json silenced it; help is success.
    if (err instanceof CommanderError) {
      return err.exitCode === 0 || !json
        ? describeError(err).exitCode
        : reportError(err, { json, debug: false });
    }
    return reportError(err, { json, debug });
  }
}

// `cairn volume list | head -1`: a closed pipe is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = reportError(err, { json: false, debug: true });
  },
);
