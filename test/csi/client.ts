/**
 * A CSI plugin under test and gRPC clients for it. The plugin runs in this process
 * ({@link startPlugin}) or as the real `cairn-csi` binary in a child process
 * ({@link spawnPlugin}, for restart and signal tests), on a unix socket in a fresh temp
 * directory, with a SQLite state file and `file` backends in that directory. Clients are made
 * from the same proto file the server loads, through grpc-js's generic client constructors,
 * and each RPC is a promise. `close()` removes everything the plugin made.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type Client, credentials, type ServiceError, status } from '@grpc/grpc-js';
import { type CsiConfig, loadCsiConfig } from '../../src/csi/config.js';
import { type CsiServiceName, csiClient } from '../../src/csi/proto.js';
import { type CsiServer, startCsiServer } from '../../src/csi/server.js';
import type { Logger } from '../../src/util/logger.js';

/** dist/test/csi/client.js → dist/src/csi/main.js */
export const CSI_BIN = fileURLToPath(new URL('../../src/csi/main.js', import.meta.url));

/** One promise-returning function per service: `rpc('CreateVolume', request)`. */
// biome-ignore lint/suspicious/noExplicitAny: responses are checked field by field in the tests
export type Rpc = <Res = any>(
  method: string,
  request?: object,
  opts?: { deadlineMs?: number },
) => Promise<Res>;

/** Clients of every CSI service at one address. */
export interface Clients {
  identity: Rpc;
  controller: Rpc;
  node: Rpc;
  groupController: Rpc;
  /** The raw SnapshotMetadata client (its methods stream). */
  snapshotMetadata: Client;
  close(): void;
}

/** Connects a client of each service to `address` (`unix:///path` or `host:port`). */
export function connect(address: string): Clients {
  const target = address.startsWith('tcp://') ? address.slice('tcp://'.length) : address;
  const made: Client[] = [];
  const make = (name: CsiServiceName) => {
    const Ctor = csiClient(name);
    const client = new Ctor(target, credentials.createInsecure());
    made.push(client);
    return client;
  };
  const rpc = (name: CsiServiceName): Rpc => {
    type Method = (req: object, opts: object, cb: (err: ServiceError | null, res: unknown) => void) => void;
    const client = make(name) as unknown as Record<string, Method | undefined>;
    return (method, request = {}, opts = {}) =>
      new Promise((resolve, reject) => {
        const fn = client[method];
        if (typeof fn !== 'function') return reject(new Error(`${name} has no method ${method}`));
        const deadline = new Date(Date.now() + (opts.deadlineMs ?? 30_000));
        fn.call(client, request, { deadline }, (err, res) => (err ? reject(err) : resolve(res as never)));
      });
  };
  const clients: Clients = {
    identity: rpc('Identity'),
    controller: rpc('Controller'),
    node: rpc('Node'),
    groupController: rpc('GroupController'),
    snapshotMetadata: make('SnapshotMetadata'),
    close() {
      for (const c of made) c.close();
    },
  };
  return clients;
}

/** Asserts that `p` fails with gRPC status `code` and, when given, a message matching `message`. */
export async function rejectsCode(
  p: Promise<unknown>,
  code: status,
  message?: RegExp,
): Promise<ServiceError> {
  let err: ServiceError | undefined;
  try {
    await p;
  } catch (e) {
    err = e as ServiceError;
  }
  assert.ok(err, `expected status ${status[code]}, but the call succeeded`);
  assert.equal(
    err.code,
    code,
    `expected status ${status[code]}, got ${status[err.code] ?? err.code}: ${err.details ?? err.message}`,
  );
  if (message) assert.match(err.details, message);
  return err;
}

/** A test directory with a config file: state, two `file` backends (`pool` thin, `thick`). */
export interface Sandbox {
  dir: string;
  socket: string;
  configFile: string;
  stateFile: string;
  /** Backend name → its directory. */
  backendDirs: { pool: string; thick: string };
  /** The environment the plugin is configured with. */
  env: Record<string, string>;
}

export async function sandbox(extraEnv: Record<string, string> = {}): Promise<Sandbox> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'cairn-csi-')));
  const backendDirs = { pool: join(dir, 'pool'), thick: join(dir, 'thick') };
  const stateFile = join(dir, 'cairn.db');
  const configFile = join(dir, 'cairn.yaml');
  await writeFile(
    configFile,
    [
      `state: sqlite:${stateFile}`,
      'defaultBackend: pool',
      'backends:',
      '  pool:',
      '    driver: file',
      `    path: ${backendDirs.pool}`,
      '  thick:',
      '    driver: file',
      `    path: ${backendDirs.thick}`,
      '    provisioning: thick',
      '',
    ].join('\n'),
  );
  const socket = join(dir, 'csi.sock');
  const env: Record<string, string> = {
    CSI_ENDPOINT: `unix://${socket}`,
    CAIRN_CSI_MODE: 'controller',
    CAIRN_CSI_NODE_ID: hostname(),
    CAIRN_CSI_NODE_STATE_DIR: join(dir, 'node'),
    ...extraEnv,
  };
  return { dir, socket, configFile, stateFile, backendDirs, env };
}

/** A logger that keeps every line (as JSON text) for assertions. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (obj: object, msg?: string) => {
    lines.push(JSON.stringify({ level, msg, ...obj }));
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A plugin running in this process, with clients. */
export interface Plugin extends Clients {
  sandbox: Sandbox;
  server: CsiServer;
  config: CsiConfig;
  logger: Logger & { lines: string[] };
  /** Stops the plugin and removes the sandbox (unless `keep`). */
  stop(opts?: { keep?: boolean }): Promise<void>;
}

/** Starts the plugin in this process (mode `controller` unless `env` says otherwise). */
export async function startPlugin(env: Record<string, string> = {}, box?: Sandbox): Promise<Plugin> {
  const sb = box ?? (await sandbox(env));
  const config = await loadCsiConfig({ configPath: sb.configFile, env: { ...sb.env, ...env } });
  const logger = memoryLogger();
  const server = await startCsiServer({ config, logger, shutdownTimeoutMs: 2_000 });
  const clients = connect(server.address);
  return {
    ...clients,
    sandbox: sb,
    server,
    config,
    logger,
    async stop(opts = {}) {
      clients.close();
      await server.close();
      if (!opts.keep) await rm(sb.dir, { recursive: true, force: true });
    },
  };
}

/** The real `cairn-csi` binary running in a child process. */
export interface PluginProcess {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();

/** Kills (SIGKILL) every plugin process still running: call it from an `after` hook. */
export function killPlugins(): void {
  for (const c of children) c.kill('SIGKILL');
}

/** Starts `cairn-csi --config <sandbox config>` with the sandbox's environment. */
export function spawnPlugin(sb: Sandbox, env: Record<string, string> = {}, args?: string[]): PluginProcess {
  const child = spawn(process.execPath, [CSI_BIN, ...(args ?? ['--config', sb.configFile])], {
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: sb.dir, ...sb.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  child.stdout?.resume();
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, stderr: () => err, exited };
}

/**
 * Runs `fn` again while it fails with ABORTED, as a CO does (with back-off), for at most
 * `timeoutMs`: a lock left by a killed process is broken only once it is a couple of seconds old.
 */
export async function retryAborted<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    try {
      return await fn();
    } catch (err) {
      if ((err as ServiceError).code !== status.ABORTED || Date.now() > deadline) throw err;
      await sleep(delay);
    }
  }
}

/** Waits until the plugin at `address` answers Probe with ready. */
export async function waitReady(address: string, proc?: PluginProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const clients = connect(address);
  try {
    for (;;) {
      if (proc && proc.child.exitCode !== null) throw new Error(`plugin exited: ${proc.stderr()}`);
      try {
        const res = await clients.identity('Probe', {}, { deadlineMs: 1_000 });
        if (res.ready?.value) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline)
        throw new Error(`plugin not ready after ${timeoutMs} ms: ${proc?.stderr() ?? ''}`);
      await sleep(50);
    }
  } finally {
    clients.close();
  }
}

/** A mount capability with an access mode. */
export const mountCap = (mode = 'SINGLE_NODE_WRITER', fs_type = '') => ({
  mount: { fs_type, mount_flags: [] },
  access_mode: { mode },
});
/** A block capability with an access mode. */
export const blockCap = (mode = 'SINGLE_NODE_WRITER') => ({ block: {}, access_mode: { mode } });

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** A CreateVolume request with a mount capability and a size in bytes. */
export function createRequest(name: string, size = 16 * MiB, extra: object = {}) {
  return {
    name,
    capacity_range: { required_bytes: String(size) },
    volume_capabilities: [mountCap()],
    ...extra,
  };
}
