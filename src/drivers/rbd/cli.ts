import type { CommandRunner } from '../../exec/runner.js';
import { alreadyExists, CairnError, ErrorCode, notFound } from '../../util/errors.js';

/** How to reach a cluster: what every `rbd`/`ceph`/`rbd-fuse` command needs. */
export interface CephAccess {
  conf?: string | undefined;
  monitors?: readonly string[] | undefined;
  user: string;
  keyring?: string | undefined;
  /** The user's key, for redaction; it reaches the tools through `keyFile`, never the argv. */
  key?: string | undefined;
  /** A 0600 file holding `key` (see keyfile.ts). */
  keyFile?: string | undefined;
  timeoutMs: number;
}

/** Global arguments for `rbd` and `ceph`: cluster, identity, and op timeouts (so a dead monitor fails in time). */
export function cephArgs(a: CephAccess): string[] {
  const secs = String(Math.max(1, Math.floor(a.timeoutMs / 1000) - 1));
  const out: string[] = [];
  if (a.conf) out.push('--conf', a.conf);
  if (a.monitors?.length) out.push('--mon_host', a.monitors.join(','));
  out.push('--id', a.user);
  if (a.keyring) out.push('--keyring', a.keyring);
  if (a.keyFile) out.push('--keyfile', a.keyFile);
  out.push(
    `--client_mount_timeout=${secs}`,
    `--rados_mon_op_timeout=${secs}`,
    `--rados_osd_op_timeout=${secs}`,
  );
  return out;
}

/** The exit code of a failed command, when the runner reported one. */
export function exitCodeOf(err: unknown): number | undefined {
  if (err instanceof CairnError && typeof err.details?.exitCode === 'number') return err.details.exitCode;
  return undefined;
}

// rbd exits with the errno of the failure.
export const ENOENT = 2;
export const EEXIST = 17;
export const EBUSY = 16;
export const ENOTEMPTY = 39;
export const ETIMEDOUT = 110;

/** Runs a Ceph tool; maps ENOENT/EEXIST/ETIMEDOUT exits to NOT_FOUND/ALREADY_EXISTS/TIMEOUT. */
export async function runCeph(
  runner: CommandRunner,
  tool: 'rbd' | 'ceph',
  access: CephAccess,
  args: readonly string[],
  what: string,
): Promise<string> {
  const argv = [tool, ...cephArgs(access), ...args];
  if (tool === 'ceph') argv.splice(1, 0, '--connect-timeout', String(Math.ceil(access.timeoutMs / 1000)));
  try {
    const { stdout } = await runner.run(argv, {
      timeoutMs: access.timeoutMs,
      secrets: access.key ? [access.key] : [],
    });
    return stdout;
  } catch (err) {
    const code = exitCodeOf(err);
    const msg = err instanceof Error ? err.message : String(err);
    if (code === ENOENT)
      throw notFound(`${what}: not found (${msg})`, { cause: err, details: { exitCode: code } });
    if (code === EEXIST)
      throw alreadyExists(`${what}: already exists (${msg})`, { cause: err, details: { exitCode: code } });
    if (code === ETIMEDOUT || code === 145) {
      // "couldn't connect to the cluster": the command never reached it, so it changed nothing.
      const connected = !/couldn't connect to the cluster/.test(msg);
      throw new CairnError(ErrorCode.Timeout, `${what}: the cluster did not answer in time (${msg})`, {
        cause: err,
        details: { exitCode: code, connected },
      });
    }
    throw err;
  }
}
