/**
 * The CSI gRPC server: Identity always, Controller in `controller` and `all` modes, Node in
 * `node` and `all` modes, on a unix socket (the spec's transport) or, for tests and debugging,
 * TCP. GroupController and SnapshotMetadata are registered with every method answering
 * UNIMPLEMENTED, and are not advertised; so is a service the mode leaves out.
 *
 * The unix socket is bound by this module, not by grpc-js: a stale socket file (one nothing
 * listens on) is replaced, anything else at the path is left alone and fails the start, and the
 * socket is created with mode 0600 (bound under umask 0177, so it is never reachable by
 * others, even for an instant). Connections are handed to grpc-js through a connection
 * injector.
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server as NetServer, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { createLocalConnector } from '../connectors/local.js';
import type { Connector } from '../connectors/spi.js';
import { Cairn } from '../core/cairn.js';
import { type CommandRunner, createRunner } from '../exec/runner.js';
import { CairnError, errorMessage, invalidArgument, toCairnError, unsupported } from '../util/errors.js';
import { hasCode } from '../util/fsx.js';
import type { Logger } from '../util/logger.js';
import { type CsiConfig, type Endpoint, formatEndpoint, TOPOLOGY_KEY } from './config.js';
import { isHostLocal } from './controller/topology.js';
import { createControllerService } from './controller.js';
import { cairnVersion, createIdentityService } from './identity.js';
import { jsonLogger } from './log.js';
import { createNodeService } from './node.js';
import type { NodeDeps } from './node-deps.js';
import { csiService } from './proto.js';
import { unimplementedService } from './rpc.js';

/**
 * In `abort` mode, how long an operation waits for a lock another process holds on the same
 * object before it answers ABORTED.
 */
export const ABORT_LOCK_TIMEOUT_MS = 100;
/** How long `close()` lets calls in progress finish before it cuts them off. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/** Options of {@link startCsiServer}. */
export interface CsiServerOptions {
  config: CsiConfig;
  /** Default: JSON lines on stderr at `config.logLevel`. */
  logger?: Logger;
  /** Runs OS commands (default: the real runner with the configured root helper). */
  runner?: CommandRunner;
  shutdownTimeoutMs?: number;
}

/** A running plugin. */
export interface CsiServer {
  /** Where it listens: `unix:///path` or `tcp://host:port` (the real port when 0 was asked for). */
  readonly address: string;
  readonly mode: CsiConfig['mode'];
  /** The library context the Controller uses (null in `node` mode). */
  readonly cairn: Cairn | null;
  /**
   * Stops accepting connections, lets calls in progress finish (at most `shutdownTimeoutMs`),
   * then cuts off the rest, removes the socket and closes the library context. Idempotent.
   */
  close(): Promise<void>;
}

/** Opens the library context for the Controller: the state store and every configured backend. */
async function openLibrary(config: CsiConfig, logger: Logger, runner: CommandRunner): Promise<Cairn> {
  const lib = config.library;
  const where = lib.file ? `config file ${lib.file}` : 'the default configuration';
  if (!Object.hasOwn(lib.backends, lib.defaultBackend)) {
    throw invalidArgument(
      `${where}: defaultBackend "${lib.defaultBackend}" is not one of the configured backends (${Object.keys(lib.backends).join(', ') || 'none'})`,
    );
  }
  const lockTimeoutMs = config.concurrency === 'abort' ? ABORT_LOCK_TIMEOUT_MS : lib.lockTimeoutMs;
  const cairn = await Cairn.open({
    state: lib.state,
    logger,
    runner,
    ...(lib.lockDir === undefined ? {} : { lockDir: lib.lockDir }),
    ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }),
    ...(lib.multipath === undefined ? {} : { multipath: lib.multipath }),
  });
  try {
    for (const [name, cfg] of Object.entries(lib.backends)) {
      try {
        await cairn.addBackend(name, cfg);
      } catch (err) {
        const e = toCairnError(err);
        throw new CairnError(e.code, `${where}: backends.${name}: ${e.message}`, { cause: err });
      }
    }
  } catch (err) {
    await cairn.close().catch(() => {});
    throw err;
  }
  return cairn;
}

/** The Node service's dependencies from the configuration. */
function nodeDeps(config: CsiConfig, logger: Logger, runner: CommandRunner): NodeDeps {
  const connectors = new Map<string, Connector>();
  return {
    nodeId: config.nodeId,
    maxVolumesPerNode: config.maxVolumesPerNode,
    topology: { [TOPOLOGY_KEY]: config.nodeId },
    defaultFsType: config.defaultFsType,
    stateDir: config.nodeStateDir,
    runner,
    logger,
    connector(protocol) {
      let c = connectors.get(protocol);
      if (!c && protocol === 'local') {
        c = createLocalConnector(runner);
        connectors.set(protocol, c);
      }
      if (!c) throw unsupported(`no connector for protocol "${protocol}" on node ${config.nodeId}`);
      return c;
    },
  };
}

/** True when something accepts connections on the unix socket at `path`. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(true); // accepted but silent, or a full backlog: someone is there
    }, 1_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      if (hasCode(err, 'ECONNREFUSED') || hasCode(err, 'ENOENT')) resolve(false);
      else reject(err);
    });
  });
}

/** Removes a stale socket at `path`; refuses a live one or anything that is not a socket. */
async function clearSocketPath(path: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return;
    throw err;
  }
  if (!st.isSocket())
    throw invalidArgument(`CSI_ENDPOINT: ${path} exists and is not a socket; not replacing it`);
  if (await listening(path)) throw invalidArgument(`CSI_ENDPOINT: another process is listening on ${path}`);
  await unlink(path).catch((err) => {
    if (!hasCode(err, 'ENOENT')) throw err;
  });
}

/**
 * Binds a unix socket with mode 0600 from the first instant. `onConnection` is attached before
 * the socket exists, so no client that connects early is left without a handler.
 */
async function listenUnix(path: string, onConnection: (socket: Socket) => void): Promise<NetServer> {
  await mkdir(dirname(path), { recursive: true });
  await clearSocketPath(path);
  const server = createServer(onConnection);
  const ready = new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  // Node binds synchronously inside listen(): the umask applies to this socket only.
  const previous = process.umask(0o177);
  try {
    server.listen(path);
  } finally {
    process.umask(previous);
  }
  await ready;
  await chmod(path, 0o600);
  return server;
}

function bindTcp(server: Server, e: Extract<Endpoint, { kind: 'tcp' }>): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${e.host}:${e.port}`, ServerCredentials.createInsecure(), (err, port) =>
      err
        ? reject(invalidArgument(`CSI_ENDPOINT: cannot listen on ${e.host}:${e.port}: ${err.message}`))
        : resolve(port),
    );
  });
}

/**
 * Starts the plugin as `config` says: opens what its mode needs, registers the services and
 * listens. Fails (and leaves nothing open) when the configuration is wrong, a backend cannot be
 * opened or the endpoint is taken.
 */
export async function startCsiServer(opts: CsiServerOptions): Promise<CsiServer> {
  const { config } = opts;
  const logger = opts.logger ?? jsonLogger(config.logLevel);
  const rootHelper = config.library.rootHelper;
  const runner =
    opts.runner ??
    createRunner({
      rootHelper:
        typeof rootHelper === 'string' ? rootHelper.split(/\s+/).filter(Boolean) : (rootHelper ?? []),
      logger,
    });
  const serveController = config.mode !== 'node';
  const serveNode = config.mode !== 'controller';
  const cairn = serveController ? await openLibrary(config, logger, runner) : null;
  const local = cairn?.backends.filter(isHostLocal).map((b) => b.name) ?? [];
  if (local.length > 0 && config.nodeId !== hostname()) {
    // The file driver exports to the host named hostname(); publishing to another node id fails.
    logger.warn(
      { nodeId: config.nodeId, hostname: hostname(), backends: local },
      'CAIRN_CSI_NODE_ID differs from the host name: volumes of host-local backends can only be published to a node whose id is the host name',
    );
  }

  const server = new Server();
  let unixServer: NetServer | null = null;
  const sockets = new Set<Socket>();
  try {
    const manifest: Record<string, string> = { mode: config.mode, topologyKey: TOPOLOGY_KEY };
    if (cairn) {
      manifest.backends = cairn.backends.map((b) => `${b.name}=${b.driverName}`).join(',');
      manifest.defaultBackend = config.library.defaultBackend;
    }
    if (serveNode) manifest.nodeId = config.nodeId;
    server.addService(
      csiService('Identity'),
      createIdentityService({
        driverName: config.driverName,
        version: cairnVersion(),
        manifest,
        logger,
        async probe() {
          if (!cairn) return;
          try {
            await cairn.store.list('volume', { id: '(probe)' });
          } catch (err) {
            throw new Error(`state store ${cairn.store.location}: ${errorMessage(err)}`);
          }
          for (const b of cairn.backends) {
            try {
              await b.stats();
            } catch (err) {
              throw new Error(`backend "${b.name}": ${errorMessage(err)}`);
            }
          }
        },
      }),
    );
    server.addService(
      csiService('Controller'),
      cairn
        ? createControllerService({
            cairn,
            nodeId: config.nodeId,
            defaultBackend: config.library.defaultBackend,
            concurrency: config.concurrency,
            maxVolumesPerNode: config.maxVolumesPerNode,
            logger,
          })
        : unimplementedService('Controller', csiService('Controller'), 'not served in mode "node"'),
    );
    server.addService(
      csiService('Node'),
      serveNode
        ? createNodeService(nodeDeps(config, logger, runner))
        : unimplementedService('Node', csiService('Node'), 'not served in mode "controller"'),
    );
    server.addService(
      csiService('GroupController'),
      unimplementedService('GroupController', csiService('GroupController')),
    );
    server.addService(
      csiService('SnapshotMetadata'),
      unimplementedService('SnapshotMetadata', csiService('SnapshotMetadata')),
    );

    let address: string;
    if (config.endpoint.kind === 'unix') {
      const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
      unixServer = await listenUnix(config.endpoint.path, (socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        injector.injectConnection(socket);
      });
      address = formatEndpoint(config.endpoint);
    } else {
      const port = await bindTcp(server, config.endpoint);
      address = formatEndpoint({ ...config.endpoint, port });
    }
    logger.info(
      {
        address,
        mode: config.mode,
        driver: config.driverName,
        nodeId: config.nodeId,
        version: cairnVersion(),
      },
      'cairn-csi listening',
    );

    const timeoutMs = opts.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    let closing: Promise<void> | undefined;
    const close = async () => {
      const listener = unixServer;
      const stopped = listener
        ? new Promise<void>((resolve) => listener.close(() => resolve()))
        : Promise.resolve();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn({ timeoutMs }, 'calls still running at shutdown; cutting them off');
          server.forceShutdown();
          resolve();
        }, timeoutMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      for (const s of sockets) s.destroy();
      await stopped;
      if (config.endpoint.kind === 'unix') await removeOwnSocket(config.endpoint.path);
      if (cairn) await cairn.close();
      logger.info({ address }, 'cairn-csi stopped');
    };
    return {
      address,
      mode: config.mode,
      cairn,
      close() {
        closing ??= close();
        return closing;
      },
    };
  } catch (err) {
    server.forceShutdown();
    if (unixServer) unixServer.close();
    if (cairn) await cairn.close().catch(() => {});
    throw err;
  }
}

/** Node removes a unix socket when its server closes; this makes sure, sockets only. */
async function removeOwnSocket(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSocket() && !(await listening(path))) await unlink(path);
  } catch (err) {
    if (!hasCode(err, 'ENOENT')) throw err;
  }
}
