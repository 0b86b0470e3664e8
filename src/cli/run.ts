/**
 * Glue between commander actions and the library: an action wrapped in {@link withCairn}
 * loads the configuration, opens the context, and closes it afterwards whatever happens.
 * The configuration module (and with it the library) is imported only here, on demand, so
 * `cairn --help` and usage errors never load the library or touch the state store.
 */
import type { Command } from 'commander';
import type { CliContext } from './config.js';
import { cliLogger, debugEnabled } from './debug.js';
import { Output } from './output.js';

/** What an action receives: its parsed arguments and options, and where to print. */
export interface Call<O> {
  /** Positional arguments, as commander processed them (a variadic one is an array). */
  args: unknown[];
  opts: O;
  out: Output;
}

/** Global options, defined on the program and accepted before or after the subcommand. */
export interface GlobalOptions {
  json?: boolean;
  config?: string;
}

function callOf<O>(params: unknown[]): Call<O> & { command: Command } {
  const command = params.at(-1) as Command;
  const globals = command.optsWithGlobals<GlobalOptions>();
  return {
    command,
    args: params.slice(0, -2),
    opts: command.opts<O & object>() as O,
    out: new Output(globals.json === true),
  };
}

/** An action that needs no state (e.g. `host connector`). */
export function withOutput<O>(fn: (call: Call<O>) => Promise<void>): (...params: unknown[]) => Promise<void> {
  return (...params) => fn(callOf<O>(params));
}

/** An action that runs against the configured Cairn context. */
export function withCairn<O>(
  fn: (ctx: CliContext, call: Call<O>) => Promise<void>,
): (...params: unknown[]) => Promise<void> {
  return async (...params) => {
    const call = callOf<O>(params);
    const { loadConfig, openContext } = await import('./config.js');
    const config = await loadConfig(call.command.optsWithGlobals<GlobalOptions>().config, process.env);
    const ctx = await openContext(
      config,
      cliLogger((m) => call.out.warn(m), debugEnabled()),
    );
    let failed = true;
    try {
      await fn(ctx, call);
      failed = false;
    } finally {
      // A failure to close must not hide the command's own error.
      await ctx.close().catch((err: unknown) => {
        if (!failed) throw err;
      });
    }
  };
}
