/**
 * The CSI plugin's configuration: the library part (state store, backends, default backend,
 * root helper, lock directory) comes from the same YAML file the CLI reads (`--config` or
 * `CAIRN_CSI_CONFIG`, else `CAIRN_CONFIG`, else the CLI's zero-config default); the plugin part comes
 * from the environment, as the CSI spec recommends. Everything is validated up front so a
 * misconfigured plugin fails at start with a message naming the variable or field.
 */
import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { type CliConfig, loadConfig } from '../cli/config.js';
import { invalidArgument } from '../util/errors.js';
import { parseWith } from '../util/zod.js';
import type { LogLevel } from './log.js';
import { FS_TYPES, type FsType } from './node/format.js';

/** The topology key of the node a volume is reachable from (file backends: their own host). */
export const TOPOLOGY_KEY = 'topology.csi.cairn.io/host';
/** The plugin name reported by GetPluginInfo unless `CAIRN_CSI_DRIVER_NAME` says otherwise. */
export const DEFAULT_DRIVER_NAME = 'csi.cairn.io';
export const DEFAULT_ENDPOINT = 'unix:///run/cairn/csi.sock';
export const DEFAULT_NODE_STATE_DIR = '/var/lib/cairn/csi-node';

export const CSI_MODES = ['controller', 'node', 'all'] as const;
export type CsiMode = (typeof CSI_MODES)[number];
export { FS_TYPES };
export type CsiFsType = FsType;

/** Where the server listens. */
export type Endpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** The plugin's whole configuration. */
export interface CsiConfig {
  endpoint: Endpoint;
  mode: CsiMode;
  /** GetPluginInfo's name. */
  driverName: string;
  /** This node's id: NodeGetInfo's node_id, and the topology value of file backends. */
  nodeId: string;
  defaultFsType: CsiFsType;
  /** NodeGetInfo's max_volumes_per_node and ControllerPublishVolume's limit; 0 = no limit. */
  maxVolumesPerNode: number;
  nodeStateDir: string;
  /** `abort`: a call on a busy volume fails at once with ABORTED; `queue`: it waits its turn. */
  concurrency: 'abort' | 'queue';
  logLevel: LogLevel;
  /** The library configuration (the CLI's shape). */
  library: CliConfig;
}

// Spec: a plugin name is at most 63 characters of domain-name notation.
const DRIVER_NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$/;
// Spec: a topology value is at most 63 characters, alphanumeric at both ends, `-_.` inside.
const TOPOLOGY_VALUE_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

const nonNegativeInt = z
  .string()
  .regex(/^\d+$/, 'must be a whole number ≥ 0')
  .transform(Number)
  .refine((n) => Number.isSafeInteger(n), 'is too large');

/** The environment variables the plugin reads, with their defaults. */
const envSchema = z.object({
  CSI_ENDPOINT: z.string().min(1).default(DEFAULT_ENDPOINT),
  CAIRN_CSI_MODE: z.enum(CSI_MODES).default('all'),
  CAIRN_CSI_DRIVER_NAME: z
    .string()
    .regex(DRIVER_NAME_RE, 'must be 1-63 letters, digits, "." and "-" (domain-name notation)')
    .default(DEFAULT_DRIVER_NAME),
  CAIRN_CSI_NODE_ID: z
    .string()
    .regex(
      TOPOLOGY_VALUE_RE,
      'must be 1-63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit (it is a topology value)',
    )
    .optional(),
  CAIRN_CSI_DEFAULT_FS: z.enum(FS_TYPES).default('ext4'),
  CAIRN_CSI_MAX_VOLUMES_PER_NODE: nonNegativeInt.default(0),
  CAIRN_CSI_NODE_STATE_DIR: z
    .string()
    .refine((p) => isAbsolute(p), 'must be an absolute path')
    .default(DEFAULT_NODE_STATE_DIR),
  CAIRN_CSI_CONCURRENCY: z.enum(['abort', 'queue']).default('abort'),
  CAIRN_CSI_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).optional(),
});

/**
 * Parses an endpoint: `unix:///abs/path.sock`, `unix:path` (relative to the working
 * directory), or `tcp://host:port` (port 0 picks a free one; for tests and debugging).
 * @throws CairnError INVALID_ARGUMENT naming `field`
 */
export function parseEndpoint(value: string, field = 'CSI_ENDPOINT'): Endpoint {
  if (value.startsWith('unix:')) {
    let path = value.slice('unix:'.length);
    if (path.startsWith('//')) {
      path = path.slice(2);
      if (!path.startsWith('/'))
        throw invalidArgument(
          `${field}: ${JSON.stringify(value)}: unix://… needs an absolute path (unix:///path/to/csi.sock)`,
        );
    }
    if (path === '') throw invalidArgument(`${field}: ${JSON.stringify(value)} names no socket path`);
    return { kind: 'unix', path: resolve(path) };
  }
  const tcp = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port > 65535) throw invalidArgument(`${field}: ${JSON.stringify(value)}: port must be 0-65535`);
    return { kind: 'tcp', host: tcp[1]!, port };
  }
  throw invalidArgument(
    `${field}: ${JSON.stringify(value)} is not an endpoint; allowed: unix:///path/to/csi.sock, unix:relative/path, tcp://host:port`,
  );
}

/** The endpoint as a URL-like string: `unix:///path` or `tcp://host:port`. */
export function formatEndpoint(e: Endpoint): string {
  return e.kind === 'unix' ? `unix://${e.path}` : `tcp://${e.host}:${e.port}`;
}

/**
 * Reads the configuration: `configPath` (`--config`) or `CAIRN_CSI_CONFIG` names the YAML file
 * (the CLI's format); the `CSI_*` variables configure the plugin itself.
 * @throws CairnError INVALID_ARGUMENT naming the variable or field at fault
 */
export async function loadCsiConfig(
  opts: { configPath?: string | undefined; env?: NodeJS.ProcessEnv } = {},
): Promise<CsiConfig> {
  const env = opts.env ?? process.env;
  const raw: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    // An empty variable counts as unset, as in a Kubernetes manifest with `value: ""`.
    if (v !== undefined && v !== '') raw[key] = v;
  }
  const e = parseWith(envSchema, raw, 'CSI environment');
  const library = await loadConfig(opts.configPath || env.CAIRN_CSI_CONFIG || undefined, env);
  let nodeId = e.CAIRN_CSI_NODE_ID;
  if (nodeId === undefined) {
    nodeId = hostname();
    if (!TOPOLOGY_VALUE_RE.test(nodeId)) {
      throw invalidArgument(
        `CAIRN_CSI_NODE_ID is unset and the host name ${JSON.stringify(nodeId)} is not a valid node id (1-63 letters, digits, "-", "_" and "."); set CAIRN_CSI_NODE_ID`,
      );
    }
  }
  const debug = env.CAIRN_DEBUG !== undefined && !['', '0', 'false'].includes(env.CAIRN_DEBUG.toLowerCase());
  return {
    endpoint: parseEndpoint(e.CSI_ENDPOINT),
    mode: e.CAIRN_CSI_MODE,
    driverName: e.CAIRN_CSI_DRIVER_NAME,
    nodeId,
    defaultFsType: e.CAIRN_CSI_DEFAULT_FS,
    maxVolumesPerNode: e.CAIRN_CSI_MAX_VOLUMES_PER_NODE,
    nodeStateDir: e.CAIRN_CSI_NODE_STATE_DIR,
    concurrency: e.CAIRN_CSI_CONCURRENCY,
    logLevel: e.CAIRN_CSI_LOG_LEVEL ?? (debug ? 'debug' : 'info'),
    library,
  };
}
