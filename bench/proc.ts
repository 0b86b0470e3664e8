import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { now } from './stats.js';

/** What a finished command produced, and how long it ran (wall time, in ms). */
export interface ProcResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Options of {@link spawnTimed} and {@link run}. */
export interface ProcOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/**
 * Runs `argv` (never through a shell) to completion and times it, from just before the spawn to
 * the exit of the child; output is captured.
 */
export function spawnTimed(argv: readonly string[], opts: ProcOptions = {}): ProcResult {
  const options: SpawnSyncOptions = {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
    shell: false,
  };
  const t0 = now();
  const res = spawnSync(argv[0]!, argv.slice(1), options);
  const ms = now() - t0;
  if (res.error) throw new Error(`could not run ${argv.join(' ')}: ${res.error.message}`);
  return {
    status: res.status,
    signal: res.signal,
    stdout: String(res.stdout ?? ''),
    stderr: String(res.stderr ?? ''),
    ms,
  };
}

/** Runs `argv` and throws (with its stderr) unless it exits 0. Returns the result. */
export function run(argv: readonly string[], opts: ProcOptions = {}): ProcResult {
  const res = spawnTimed(argv, opts);
  if (res.status !== 0) {
    const why = (res.stderr.trim() || res.stdout.trim()).slice(0, 1000);
    throw new Error(
      `${argv.join(' ')} failed (${res.signal ? `signal ${res.signal}` : `exit ${res.status}`}): ${why}`,
    );
  }
  return res;
}

/** True when `name` is an executable on PATH. */
export function hasCommand(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** True when this process runs as root (loop devices and mounts need it). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** A command to time, with the name it is reported under. */
export interface TimedCommand {
  label: string;
  argv: readonly string[];
}

/**
 * Times each command `n` times, round-robin (A B C A B C ...) so drift hits all of them alike,
 * after one untimed warm-up run each (disk cache). Throws, naming the command, if one fails.
 * @returns the wall times in ms, one array per command
 */
export function timeInterleaved(
  commands: readonly TimedCommand[],
  n: number,
  opts: ProcOptions = {},
): number[][] {
  const samples = commands.map(() => [] as number[]);
  const once = (c: TimedCommand) => {
    const res = spawnTimed(c.argv, opts);
    if (res.status !== 0) {
      const why = (res.stderr.trim() || res.stdout.trim()).slice(0, 500);
      throw new Error(`${c.label}: exit ${res.status ?? res.signal}: ${why}`);
    }
    return res.ms;
  };
  for (const c of commands) once(c);
  for (let k = 0; k < n; k++) for (const [i, c] of commands.entries()) samples[i]!.push(once(c));
  return samples;
}
