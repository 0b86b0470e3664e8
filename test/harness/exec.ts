import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/**
 * Runs a command for a test harness: an argv array through execFile, never a shell.
 * @returns standard output
 */
export async function run(argv: readonly string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('run: empty argv');
  const { stdout } = await execFileP(cmd, args, {
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 64 * 1024 * 1024,
    encoding: 'utf8',
  });
  return stdout;
}
