/**
 * The CLI's configuration: a YAML file (`--config` or `CAIRN_CONFIG`), overridden by
 * `CAIRN_STATE` and `CAIRN_BACKEND`, or — with neither — a zero-config default that keeps
 * everything under the user's data directory, so a first `cairn volume create --size 1GiB`
 * works without setup. Also opens the library context the commands run against.
 *
 * This module loads the library; main.ts imports it lazily so `--help` stays cheap.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import type { Backend } from '../core/backend.js';
import { Cairn, defaultDataDir } from '../core/cairn.js';
import type { Snapshot } from '../core/snapshot.js';
import type { Volume } from '../core/volume.js';
import { CairnError, invalidArgument, notFound, toCairnError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { parseWith } from '../util/zod.js';

/** The YAML file's shape. Driver fields of a backend are checked by the driver's own schema. */
const configFileSchema = z
  .strictObject({
    /** State store URL: `sqlite:PATH`, `sqlite::memory:` or `memory:`. */
    state: z.string().min(1).optional(),
    /** Prefix for commands that need root, e.g. `sudo -n`. */
    rootHelper: z.union([z.string(), z.array(z.string().min(1))]).optional(),
    lockDir: z.string().min(1).optional(),
    lockTimeoutMs: z.number().int().nonnegative().optional(),
    /** Attach over every portal of an export, joined by dm-multipath or NVMe native multipath. */
    multipath: z.boolean().optional(),
    /** Backend used when a command gets no `--backend`. */
    defaultBackend: z.string().min(1).optional(),
    backends: z.record(z.string(), z.looseObject({ driver: z.string().min(1) })).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.defaultBackend !== undefined && c.backends && !(c.defaultBackend in c.backends)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultBackend'],
        message: `must name one of the configured backends (${Object.keys(c.backends).join(', ') || 'none'})`,
      });
    }
  });

/** The configuration a command runs with, after defaults and environment overrides. */
export interface CliConfig {
  /** The config file read, or null for the zero-config default. */
  file: string | null;
  /** State store URL; relative sqlite paths already resolved. */
  state: string;
  rootHelper?: string | string[] | undefined;
  lockDir?: string | undefined;
  lockTimeoutMs?: number | undefined;
  multipath?: boolean | undefined;
  /** The backend a command uses without `--backend`. */
  defaultBackend: string;
  /** Backend name → its configuration (`driver` plus the driver's fields). */
  backends: Record<string, Record<string, unknown>>;
}

/** The name of the only backend of the zero-config default. */
export const DEFAULT_BACKEND = 'default';

/** The zero-config default: state and one file backend, both under the user's data directory. */
function zeroConfig(dataDir: string) {
  return {
    state: `sqlite:${join(dataDir, 'cairn.db')}`,
    backends: {
      [DEFAULT_BACKEND]: { driver: 'file', path: join(dataDir, 'volumes') },
    } as CliConfig['backends'],
  };
}

/**
 * Reads the configuration. `configPath` (from `--config`) wins over `CAIRN_CONFIG`; then
 * `CAIRN_STATE` and `CAIRN_BACKEND` override what the file says. Without a file, or where the
 * file leaves out `state` or `backends`, the zero-config default fills in.
 * @throws CairnError INVALID_ARGUMENT for a missing, unreadable or invalid file, naming the
 *   field path, the value given and what is allowed
 */
export async function loadConfig(configPath: string | undefined, env: NodeJS.ProcessEnv): Promise<CliConfig> {
  const file = configPath || env.CAIRN_CONFIG || undefined;
  const dataDir = defaultDataDir(env);
  const config: CliConfig = file
    ? await readConfigFile(resolve(file), dataDir)
    : { file: null, ...zeroConfig(dataDir), defaultBackend: DEFAULT_BACKEND };
  if (env.CAIRN_STATE) config.state = resolveState(env.CAIRN_STATE, process.cwd());
  if (env.CAIRN_BACKEND) config.defaultBackend = env.CAIRN_BACKEND;
  return config;
}

async function readConfigFile(path: string, dataDir: string): Promise<CliConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : (err as Error).message;
    throw invalidArgument(`config file ${path}: cannot read it: ${why}`, { cause: err });
  }
  // yaml costs ~30 ms to import: load it only when there is a file to read.
  const { parseDocument } = await import('yaml');
  const doc = parseDocument(text, { prettyErrors: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    // `state: memory:` is the classic trap: a plain value ending in ":" starts a mapping.
    const line = text.split('\n')[(yamlError.linePos?.[0].line ?? 0) - 1] ?? '';
    const hint = /:\s+[^'"\s]\S*:\s*(#.*)?$/.test(line)
      ? '\nhint: quote a value that ends with ":", e.g. state: "sqlite::memory:"'
      : '';
    throw invalidArgument(`config file ${path}: invalid YAML: ${yamlError.message.trimEnd()}${hint}`);
  }
  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (err) {
    throw invalidArgument(`config file ${path}: invalid YAML: ${(err as Error).message}`);
  }
  const parsed = parseWith(configFileSchema, data, `config file ${path}`);
  const dir = dirname(path);
  const defaults = zeroConfig(dataDir);
  const backends = parsed.backends ?? defaults.backends;
  const names = Object.keys(backends);
  return {
    file: path,
    state: resolveState(parsed.state ?? defaults.state, dir),
    rootHelper: parsed.rootHelper,
    lockDir: parsed.lockDir === undefined ? undefined : resolve(dir, parsed.lockDir),
    lockTimeoutMs: parsed.lockTimeoutMs,
    multipath: parsed.multipath,
    defaultBackend: parsed.defaultBackend ?? (names.length === 1 ? names[0]! : DEFAULT_BACKEND),
    backends,
  };
}

/**
 * A relative `sqlite:` path is taken relative to `baseDir` (the config file's directory), so
 * the same file works from any working directory, as relative paths in kubeconfig do.
 */
function resolveState(url: string, baseDir: string): string {
  if (!url.startsWith('sqlite:')) return url;
  const path = url.slice('sqlite:'.length);
  if (path === '' || path === ':memory:' || path.startsWith('//') || isAbsolute(path)) return url;
  return `sqlite:${resolve(baseDir, path)}`;
}

/** A configured backend that could or could not be opened. */
export type BackendSlot = { name: string; driver: string } & (
  | { backend: Backend; error?: undefined }
  | { backend?: undefined; error: CairnError }
);

/** What commands run against: the library context plus the configuration it came from. */
export interface CliContext {
  readonly cairn: Cairn;
  readonly config: CliConfig;
  /**
   * A configured backend, opened on first use (so a broken backend only fails the commands
   * that need it); the default backend when `name` is undefined.
   * @throws CairnError NOT_FOUND when not configured; the driver's error when it can't open
   */
  backend(name?: string): Promise<Backend>;
  /** Every configured backend, each opened or with the error that prevented it. */
  backends(): Promise<BackendSlot[]>;
  /** A volume by id or name, with its backend opened so it can be operated on. */
  volume(ref: string): Promise<Volume>;
  /** A snapshot by id or name, with its backend opened. */
  snapshot(ref: string): Promise<Snapshot>;
  close(): Promise<void>;
}

/** Opens the state store and returns the context; backends open on demand. */
export async function openContext(config: CliConfig, logger: Logger): Promise<CliContext> {
  const cairn = await Cairn.open({
    state: config.state,
    logger,
    ...(config.rootHelper === undefined ? {} : { rootHelper: config.rootHelper }),
    ...(config.lockDir === undefined ? {} : { lockDir: config.lockDir }),
    ...(config.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: config.lockTimeoutMs }),
    ...(config.multipath === undefined ? {} : { multipath: config.multipath }),
  });
  const opening = new Map<string, Promise<Backend>>();
  const where = config.file ? `config file ${config.file}` : 'the default configuration';

  const backend = (name: string = config.defaultBackend): Promise<Backend> => {
    let p = opening.get(name);
    if (!p) {
      p = openBackend(name);
      opening.set(name, p);
    }
    return p;
  };

  async function openBackend(name: string): Promise<Backend> {
    const cfg = Object.hasOwn(config.backends, name) ? config.backends[name] : undefined;
    if (!cfg) {
      const known = Object.keys(config.backends);
      throw notFound(
        `backend "${name}" is not configured in ${where} (configured: ${known.join(', ') || 'none'})`,
        { details: { backend: name } },
      );
    }
    try {
      return await cairn.addBackend(name, cfg);
    } catch (err) {
      const e = toCairnError(err);
      throw new CairnError(e.code, `${where}: backends.${name}: ${e.message}`, {
        cause: err,
        ...(e.details ? { details: e.details } : {}),
      });
    }
  }

  // Objects name their backend; a volume on a backend missing from the configuration can be
  // listed and shown, but not operated on.
  const withBackend = async <T extends Volume | Snapshot>(obj: T, kind: string): Promise<T> => {
    try {
      await backend(obj.backendName);
    } catch (err) {
      if (err instanceof CairnError && err.code === 'NOT_FOUND' && !(obj.backendName in config.backends)) {
        throw notFound(
          `${kind} ${obj.id} is on backend "${obj.backendName}", which is not configured in ${where}`,
          { cause: err, details: { backend: obj.backendName } },
        );
      }
      throw err;
    }
    return obj;
  };

  return {
    cairn,
    config,
    backend,
    async backends() {
      const slots: BackendSlot[] = [];
      for (const [name, cfg] of Object.entries(config.backends)) {
        const driver = String(cfg.driver);
        try {
          slots.push({ name, driver, backend: await backend(name) });
        } catch (err) {
          slots.push({ name, driver, error: toCairnError(err) });
        }
      }
      return slots;
    },
    volume: async (ref) => withBackend(await cairn.volume(ref), 'volume'),
    snapshot: async (ref) => withBackend(await cairn.snapshot(ref), 'snapshot'),
    close: () => cairn.close(),
  };
}
