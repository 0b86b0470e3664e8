/**
 * Runs the real, built `cairn` binary in a sandbox: a fresh temp directory that is HOME and
 * XDG_DATA_HOME, with an environment built from scratch so nothing of the caller's CAIRN_*
 * settings (or real home) leaks in. Cleans up after itself, loop devices included.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** dist/test/cli/harness.js → dist/src/cli/main.js */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class Sandbox {
  readonly dir: string;
  /** What the zero-config default uses: `$XDG_DATA_HOME/cairn`. */
  readonly dataDir: string;
  /** Extra environment for every run (e.g. CAIRN_CONFIG). */
  env: Record<string, string> = {};

  private constructor(dir: string) {
    this.dir = dir;
    this.dataDir = join(dir, 'data', 'cairn');
  }

  static async create(): Promise<Sandbox> {
    return new Sandbox(await mkdtemp(join(tmpdir(), 'cairn-cli-test-')));
  }

  /** Runs `cairn ...args` (argv, never a shell) and collects its output. */
  run(
    args: readonly string[],
    opts: { env?: Record<string, string>; input?: string } = {},
  ): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: {
          PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
          HOME: this.dir,
          XDG_DATA_HOME: join(this.dir, 'data'),
          ...this.env,
          ...opts.env,
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(opts.input ?? '');
    });
  }

  /** Runs a command that must succeed; returns its stdout. */
  async ok(
    args: readonly string[],
    opts: { env?: Record<string, string>; input?: string } = {},
  ): Promise<string> {
    const r = await this.run(args, opts);
    if (r.code !== 0) {
      throw new Error(`cairn ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    return r.stdout;
  }

  /** Runs a command that must exit with `code`; returns what it printed. */
  async fails(
    args: readonly string[],
    code: number,
    opts: { env?: Record<string, string>; input?: string } = {},
  ): Promise<RunResult> {
    const r = await this.run(args, opts);
    if (r.code !== code) {
      throw new Error(
        `cairn ${args.join(' ')} exited ${r.code}, not ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
      );
    }
    return r;
  }

  /** Runs a command with --json that must succeed; returns its parsed stdout. */
  async json<T = Record<string, unknown>>(
    args: readonly string[],
    opts: { env?: Record<string, string>; input?: string } = {},
  ): Promise<T> {
    return JSON.parse(await this.ok(['--json', ...args], opts)) as T;
  }

  /** Writes a file in the sandbox and returns its path. */
  async file(name: string, content: string): Promise<string> {
    const path = join(this.dir, name);
    await writeFile(path, content);
    return path;
  }

  /**
   * Unmounts what a test mounted in the sandbox, detaches every loop device backed by a file
   * in it, then removes it.
   */
  async cleanup(): Promise<void> {
    for (const mountPoint of await mountsUnder(this.dir)) {
      await promisify(execFile)('umount', ['--lazy', mountPoint]).catch(() => {});
    }
    for (const dev of await loopDevicesUnder(this.dir)) {
      await promisify(execFile)('losetup', ['--detach', dev]).catch(() => {});
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Loop devices whose backing file is under `dir` (read from sysfs). */
export async function loopDevicesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir('/sys/class/block').catch(() => [] as string[])) {
    if (!name.startsWith('loop')) continue;
    const backing = await readFile(`/sys/class/block/${name}/loop/backing_file`, 'utf8').catch(() => null);
    if (backing?.startsWith(`${dir}/`)) found.push(`/dev/${name}`);
  }
  return found;
}

/** Mount points under `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** The size in bytes of a block device, from sysfs (`size` counts 512-byte sectors). */
export async function blockDeviceSize(device: string): Promise<number> {
  const name = device.replace(/^\/dev\//, '');
  return Number((await readFile(`/sys/class/block/${name}/size`, 'utf8')).trim()) * 512;
}

/** The file behind a loop device, or null when the device is not attached. */
export async function loopBackingFile(device: string): Promise<string | null> {
  const name = device.replace(/^\/dev\//, '');
  const text = await readFile(`/sys/class/block/${name}/loop/backing_file`, 'utf8').catch(() => null);
  return text === null ? null : text.trim();
}

/** The `{"error":{code,message}}` a command printed on stderr with --json. */
export function jsonError(stderr: string): { code: string; message: string } {
  const lines = stderr.trim().split('\n');
  return (JSON.parse(lines[lines.length - 1]!) as { error: { code: string; message: string } }).error;
}
