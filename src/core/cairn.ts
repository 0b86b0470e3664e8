import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { localHostConnector } from '../connectors/host.js';
import { lazyConnector } from '../connectors/lazy.js';
import { createLocalConnector } from '../connectors/local.js';
import { createRbdConnector } from '../connectors/rbd.js';
import type { Connector } from '../connectors/spi.js';
import { resolveDriver } from '../drivers/registry.js';
import { type CommandRunner, createRunner } from '../exec/runner.js';
import { openStateStore, type StateOption, sqliteFileOf } from '../state/open.js';
import type { StateStore } from '../state/spi.js';
import { alreadyExists, invalidArgument, notFound, unsupported } from '../util/errors.js';
import { type Logger, silentLogger } from '../util/logger.js';
import { validateName } from '../util/names.js';
import { withoutSecrets } from '../util/redact.js';
import { parseWith } from '../util/zod.js';
import { Backend } from './backend.js';
import { type BackendCheck, checkBackend } from './check.js';
import { Connection } from './connection.js';
import type { Engine } from './engine.js';
import { LockManager } from './locks.js';
import {
  type AnyRecord,
  connectionRecordSchema,
  type HostConnector,
  type RecordKind,
  type RecordOf,
  snapshotRecordSchema,
  volumeRecordSchema,
} from './records.js';
import { recoverBackend } from './recovery.js';
import { Snapshot } from './snapshot.js';
import { Volume } from './volume.js';

/** Options of {@link Cairn.open}. */
export interface OpenOptions {
  /**
   * Where objects are kept: `'sqlite:PATH'` (default: `cairn.db` in the user's data directory),
   * `'sqlite::memory:'`, `'memory:'`, a store object, `{ factory }` or `{ package }`.
   */
  state?: StateOption;
  /** Prefix for commands that need root, e.g. `'sudo -n'` or `['sudo', '-n']`. */
  rootHelper?: string | string[];
  /** Directory of the lock files shared by processes using the same state. */
  lockDir?: string;
  /** How long an operation waits for another one on the same object. Default 5 minutes. */
  lockTimeoutMs?: number;
  /** A pino-compatible logger; default: silent. */
  logger?: Logger;
  /** Runs OS commands; default: the real runner. For wrapping, recording and tests. */
  runner?: CommandRunner;
  /**
   * This host attaches over every portal of an export and joins the paths with dm-multipath
   * (iSCSI) or native NVMe multipath: the default of `hostConnector()`, so of `attach()`.
   */
  multipath?: boolean;
}

const openOptionsSchema = z.strictObject({
  // z.custom checks without copying: a store object (maybe a class instance) is used as given.
  state: z
    .union([z.string().min(1), z.custom<object>((v) => typeof v === 'object' && v !== null)])
    .optional(),
  rootHelper: z.union([z.string(), z.array(z.string().min(1))]).optional(),
  lockDir: z.string().min(1).optional(),
  lockTimeoutMs: z.number().int().nonnegative().optional(),
  logger: z
    .custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).info === 'function')
    .optional(),
  runner: z
    .custom<CommandRunner>(
      (v) => typeof v === 'object' && v !== null && typeof (v as CommandRunner).run === 'function',
    )
    .optional(),
  multipath: z.boolean().optional(),
});

/** Host-side connectors by protocol, made on first use in each context. */
const CONNECTORS: Record<string, (runner: CommandRunner) => Connector> = {
  local: createLocalConnector,
  rbd: createRbdConnector,
  iscsi: (runner) =>
    lazyConnector('iscsi', async () => (await import('../connectors/iscsi.js')).createIscsiConnector(runner)),
  nvmeof: (runner) =>
    lazyConnector('nvmeof', async () => (await import('../connectors/nvme.js')).createNvmeConnector(runner)),
  nbd: (runner) =>
    lazyConnector('nbd', async () => (await import('../connectors/nbd.js')).createNbdConnector(runner)),
};

/** The user's data directory for Cairn: `$XDG_DATA_HOME/cairn` or `~/.local/share/cairn`. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'cairn');
}

/** The JSON shape of `cairn.dump()`. */
export interface StateDump {
  format: 'cairn-state';
  version: 1;
  backends: Record<string, Record<string, unknown>>;
  volumes: Volume['record'][];
  snapshots: Snapshot['record'][];
  connections: Connection['record'][];
  keyValues: Record<string, string>;
}

const dumpSchema = z.strictObject({
  format: z.literal('cairn-state'),
  version: z.literal(1),
  backends: z.record(z.string(), z.record(z.string(), z.unknown())),
  volumes: z.array(volumeRecordSchema),
  snapshots: z.array(snapshotRecordSchema),
  connections: z.array(connectionRecordSchema),
  keyValues: z.record(z.string(), z.string()),
});

/**
 * A Cairn context: a state store, the backends configured on it, and the locks that keep
 * operations on the same object in turn. Contexts are independent: open as many as needed.
 * @example
 * const cairn = await Cairn.open({ state: 'sqlite:./cairn.db' });
 * const pool = await cairn.addBackend('pool', { driver: 'file', path: '/srv/cairn' });
 * const vol = await pool.createVolume({ size: '1GiB', name: 'data' });
 * await cairn.close();
 */
export class Cairn {
  private readonly engine: Engine;
  private readonly backendMap = new Map<string, Backend>();
  private readonly connectorMap = new Map<string, Connector>();

  private constructor(
    store: StateStore,
    locks: LockManager,
    logger: Logger,
    runner: CommandRunner,
    multipath: boolean,
  ) {
    const backendMap = this.backendMap;
    const connectorMap = this.connectorMap;
    this.engine = {
      store,
      locks,
      logger,
      runner,
      localHost: hostname(),
      backend(name) {
        const b = backendMap.get(name);
        if (!b)
          throw notFound(`backend "${name}" is not configured in this context`, {
            details: { backend: name },
          });
        return b;
      },
      forgetBackend(name) {
        backendMap.delete(name);
      },
      connector(protocol) {
        let c = connectorMap.get(protocol);
        const make = Object.hasOwn(CONNECTORS, protocol) ? CONNECTORS[protocol] : undefined;
        if (!c && make) {
          c = make(runner);
          connectorMap.set(protocol, c);
        }
        if (!c) throw unsupported(`no connector for protocol "${protocol}" on this host`);
        return c;
      },
      hostConnector: (opts) => localHostConnector({ multipath: opts?.multipath ?? multipath }),
    };
  }

  /**
   * Opens a context on a state store (created and migrated as needed).
   * @throws CairnError INVALID_ARGUMENT for bad options, STATE_STORE_FAILURE for a store
   *   that can't be opened, is corrupt, foreign or from a newer Cairn
   */
  static async open(options: OpenOptions = {}): Promise<Cairn> {
    const o = parseWith(openOptionsSchema, options, 'Cairn.open options') as OpenOptions;
    const state: StateOption = o.state ?? `sqlite:${join(defaultDataDir(), 'cairn.db')}`;
    const file = sqliteFileOf(state);
    // A memory store lives in this context only, so its locks need no files unless asked for.
    const privateState = state === 'memory:' || state === 'memory' || state === 'sqlite::memory:';
    const lockDir =
      o.lockDir ?? (file ? `${resolve(file)}.locks` : privateState ? null : join(defaultDataDir(), 'locks'));
    const locks = new LockManager({
      dir: lockDir,
      ...(o.lockTimeoutMs === undefined ? {} : { timeoutMs: o.lockTimeoutMs }),
    });
    const logger = o.logger ?? silentLogger;
    const rootHelper =
      typeof o.rootHelper === 'string' ? o.rootHelper.split(/\s+/).filter(Boolean) : (o.rootHelper ?? []);
    const runner = o.runner ?? createRunner({ rootHelper, logger });
    const store = await openStateStore(state, { withLock: (key, fn) => locks.withLocks([key], fn) });
    if (store.lock) locks.useSharedLock(store.lock.bind(store));
    return new Cairn(store, locks, logger, runner, o.multipath ?? false);
  }

  /** The state store this context uses. */
  get store(): StateStore {
    return this.engine.store;
  }

  /**
   * Configures a backend. `config.driver` is a built-in driver name (`file`), an npm package
   * name, or a driver module; the other fields are the driver's own, validated by its schema.
   * @example await cairn.addBackend('fast', { driver: 'file', path: '/mnt/xfs/cairn' })
   */
  async addBackend(
    name: string,
    config: Record<string, unknown>,
    opts: { recover?: boolean } = {},
  ): Promise<Backend> {
    validateName(name, 'backend name');
    if (this.backendMap.has(name)) throw alreadyExists(`backend "${name}" is configured already`);
    if (typeof config !== 'object' || config === null)
      throw invalidArgument(`backend ${name}: config must be an object`);
    const { driver, ...rest } = config;
    const module = await resolveDriver(driver);
    const parsed = parseWith(
      module.configSchema,
      rest,
      `configuration of backend "${name}" (driver ${module.name})`,
    );
    const instance = await module.create(parsed, {
      backendName: name,
      runner: this.engine.runner,
      logger: this.engine.logger,
    });
    if (this.backendMap.has(name)) {
      await instance.close();
      throw alreadyExists(`backend "${name}" is configured already`);
    }
    const backend = new Backend(this.engine, name, module.name, parsed as Record<string, unknown>, instance);
    this.backendMap.set(name, backend);
    if (opts.recover !== false) backend.recovered = await recoverBackend(this.engine, backend);
    return backend;
  }

  /** The configured backends. */
  get backends(): Backend[] {
    return [...this.backendMap.values()];
  }

  /** A configured backend by name. @throws CairnError NOT_FOUND */
  backend(name: string): Backend {
    return this.engine.backend(name);
  }

  /** Volumes of every backend, oldest first; filter by id, name or backend. */
  async volumes(filter: { id?: string; name?: string; backend?: string } = {}): Promise<Volume[]> {
    return (await this.engine.store.list('volume', filter)).map((r) => new Volume(this.engine, r));
  }

  /** Snapshots, oldest first; filter by id, name, volume or backend. */
  async snapshots(
    filter: { id?: string; name?: string; volumeId?: string; backend?: string } = {},
  ): Promise<Snapshot[]> {
    return (await this.engine.store.list('snapshot', filter)).map((r) => new Snapshot(this.engine, r));
  }

  /** Connections, oldest first; filter by id, volume or host. */
  async connections(filter: { id?: string; volumeId?: string; host?: string } = {}): Promise<Connection[]> {
    return (await this.engine.store.list('connection', filter)).map((r) => new Connection(this.engine, r));
  }

  /**
   * A volume by id, or by name when no id matches (the name must be unique across backends).
   * @throws CairnError NOT_FOUND; INVALID_ARGUMENT when the name is ambiguous
   */
  async volume(idOrName: string): Promise<Volume> {
    return new Volume(this.engine, await this.find('volume', idOrName));
  }

  /** A snapshot by id or name. @throws CairnError NOT_FOUND */
  async snapshot(idOrName: string): Promise<Snapshot> {
    return new Snapshot(this.engine, await this.find('snapshot', idOrName));
  }

  /** A connection by id. @throws CairnError NOT_FOUND */
  async connection(id: string): Promise<Connection> {
    const rec = await this.engine.store.get('connection', id);
    if (!rec) throw notFound(`connection ${id} not found`);
    return new Connection(this.engine, rec);
  }

  private async find<K extends 'volume' | 'snapshot'>(kind: K, ref: string): Promise<RecordOf<K>> {
    if (typeof ref !== 'string' || ref.length === 0)
      throw invalidArgument(`${kind}: expected an id or a name, got ${JSON.stringify(ref)}`);
    const byId = await this.engine.store.get(kind, ref);
    if (byId) return byId;
    const byName = await this.engine.store.list(kind, { name: ref });
    if (byName.length > 1) {
      throw invalidArgument(
        `${kind} name "${ref}" is used on several backends (${byName.map((r: AnyRecord) => r.backend).join(', ')}); use the id`,
      );
    }
    if (!byName[0]) throw notFound(`${kind} "${ref}" not found`, { details: { kind, ref } });
    return byName[0];
  }

  /**
   * This host's connector properties: what a backend needs to export a volume here. `multipath`
   * defaults to the `multipath` option of `Cairn.open`.
   */
  async hostConnector(opts: { multipath?: boolean } = {}): Promise<HostConnector> {
    return this.engine.hostConnector(opts);
  }

  /**
   * The whole context as JSON: backends' configuration and every object. Secrets (passwords,
   * keys, tokens) are left out unless `includeSecrets` is set.
   */
  async dump(opts: { includeSecrets?: boolean } = {}): Promise<StateDump> {
    const { store } = this.engine;
    const backends: StateDump['backends'] = {};
    for (const b of this.backendMap.values()) backends[b.name] = b.toJSON(opts);
    const connections = await store.list('connection');
    return {
      format: 'cairn-state',
      version: 1,
      backends,
      volumes: await store.list('volume'),
      snapshots: await store.list('snapshot'),
      connections: opts.includeSecrets ? connections : connections.map((c) => withoutSecrets(c)),
      keyValues: await store.listKV(),
    };
  }

  /**
   * Reads a dump (object or JSON text) back into objects. With `save: true` they are written to
   * this context's state store (replacing records with the same ids), so they can be operated
   * on; without it they are read-only views.
   * @throws CairnError INVALID_ARGUMENT naming the first bad field; nothing is written then
   */
  async load(
    json: string | unknown,
    opts: { save?: boolean } = {},
  ): Promise<{ volumes: Volume[]; snapshots: Snapshot[]; connections: Connection[] }> {
    let input: unknown = json;
    if (typeof json === 'string') {
      try {
        input = JSON.parse(json);
      } catch (err) {
        throw invalidArgument(`state dump is not JSON: ${(err as Error).message}`);
      }
    }
    const dump = parseWith(dumpSchema, input, 'state dump');
    assertDistinct(dump);
    if (opts.save) {
      const all: AnyRecord[] = [...dump.volumes, ...dump.snapshots, ...dump.connections];
      // Check every name against the store before writing any record, so a clash writes nothing.
      for (const r of all) await this.assertNameFree(r);
      for (const r of all) await this.engine.store.restore(r);
      for (const [k, v] of Object.entries(dump.keyValues)) await this.engine.store.setKV(k, v);
    }
    return {
      volumes: dump.volumes.map((r) => new Volume(this.engine, r)),
      snapshots: dump.snapshots.map((r) => new Snapshot(this.engine, r)),
      connections: dump.connections.map((r) => new Connection(this.engine, r)),
    };
  }

  private async assertNameFree(r: AnyRecord): Promise<void> {
    if (r.name === null) return;
    const holders = await this.engine.store.list(r.kind, { backend: r.backend, name: r.name });
    const other = holders.find((h) => h.id !== r.id);
    if (other) {
      throw alreadyExists(
        `cannot load ${r.kind} ${r.id}: the name "${r.name}" is taken on backend ${r.backend} by ${other.id}`,
      );
    }
  }

  /**
   * Compares the state store with each backend's real inventory: orphans (on the backend,
   * unknown to the store), dangling records (in the store, gone from the backend), sizes that
   * differ. With `repair`, interrupted operations are recovered and dangling records fixed
   * (see {@link checkBackend}); orphans are never removed.
   */
  async check(opts: { repair?: boolean; backend?: string } = {}): Promise<BackendCheck[]> {
    const backends = opts.backend ? [this.backend(opts.backend)] : this.backends;
    const reports: BackendCheck[] = [];
    for (const b of backends) reports.push(await checkBackend(this.engine, b, opts.repair ?? false));
    return reports;
  }

  /** Closes every backend and the state store. */
  async close(): Promise<void> {
    for (const b of [...this.backendMap.values()]) await b.close();
    await this.engine.store.close();
  }
}

/**
 * Throws INVALID_ARGUMENT naming the first record that repeats an id, or a name on its backend,
 * of an earlier record of its kind: restoring it would replace or clash with that record after
 * part of the dump was written.
 */
function assertDistinct(dump: Pick<StateDump, 'volumes' | 'snapshots' | 'connections'>): void {
  for (const list of ['volumes', 'snapshots', 'connections'] as const) {
    const ids = new Set<string>();
    const names = new Set<string>();
    dump[list].forEach((r: AnyRecord, i) => {
      if (ids.has(r.id)) throw invalidArgument(`invalid state dump: ${list}.${i}.id: ${r.id} appears twice`);
      ids.add(r.id);
      const name = JSON.stringify([r.backend, r.name]);
      if (r.name !== null && names.has(name))
        throw invalidArgument(
          `invalid state dump: ${list}.${i}.name: "${r.name}" is used twice on backend ${r.backend}`,
        );
      names.add(name);
    });
  }
}

export type { RecordKind };
