import { mkdir, readFile, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionInfo } from '../core/records.js';
import { backendFailure, conflict, invalidArgument, invalidState } from '../util/errors.js';
import { validateId } from '../util/names.js';
import type { NbdExportConfig } from './config.js';
import type { Exporter, ExporterContext, ExportTarget } from './spi.js';

/** Where Cairn keeps qemu-nbd pid files: `$CAIRN_RUN_DIR/nbd`, default `/run/cairn/nbd`. */
export function nbdRunDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.CAIRN_RUN_DIR || '/run/cairn', 'nbd');
}

/** A qemu-nbd serving a volume, as found from its pid file and command line. */
interface Server {
  pid: number;
  port: number;
  readOnly: boolean;
  path: string;
}

/** A process's argv from /proc; null when it is gone or a zombie (a dead child nobody reaped). */
async function liveCmdline(pid: number): Promise<string[] | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null || stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return null;
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  return raw ? raw.split('\0').slice(0, -1) : null;
}

/**
 * TCP sockets on this host by local port, from /proc/net/tcp and tcp6 (the kernel's own table,
 * no `ss` needed): which ports listen, and how many connections each has.
 */
async function tcpSockets(): Promise<{ listening: Set<number>; established: Map<number, number> }> {
  const listening = new Set<number>();
  const established = new Map<number, number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const [, local, , st] = line.trim().split(/\s+/);
      const port = Number.parseInt(local?.split(':').pop() ?? '', 16);
      if (Number.isNaN(port)) continue;
      if (st === '0A') listening.add(port);
      else if (st === '01') established.set(port, (established.get(port) ?? 0) + 1);
    }
  }
  return { listening, established };
}

/**
 * Exports volumes over NBD, one `qemu-nbd` per exported volume, listening on the configured
 * address on the first free port of the range, the export named after the volume id:
 *
 * `qemu-nbd --fork --persistent --shared=0 --format=raw --bind=ADDR --port=P --export-name=ID
 *  --pid-file=$CAIRN_RUN_DIR/nbd/ID.pid --cache=writeback --discard=unmap [--read-only] -- PATH`
 *
 * `--fork` returns once the server listens, and the pid file plus the process's command line are
 * all the state there is: exporting again (after a restart of Cairn too) finds the live server and
 * returns the same port. Writes go through the page cache (`writeback`, qemu-nbd's default): NBD
 * advertises FLUSH and FUA, and qemu-nbd turns a client's flush into fdatasync, so what a client
 * synced is on disk; `--discard=unmap` punches holes so thin files stay thin.
 *
 * Access: qemu-nbd has no ACL and, without TLS, no authentication, so any host that reaches the
 * address can connect. Bind to an address only the intended hosts reach; `validateConnector`
 * accepts every host. The export's mode is set when its server starts: a read-only request is
 * served by a read-write server with `readOnly` in the info (the connector attaches read-only),
 * while read-write on a read-only server is refused.
 *
 * Resize: NBD cannot tell a connected client that the size changed, and qemu-nbd reads the size
 * once. `resize` restarts the server on the same port when no client is connected, and refuses
 * (INVALID_STATE) while one is: detach, extend, attach again.
 */
export async function createNbdExporter(config: NbdExportConfig, ctx: ExporterContext): Promise<Exporter> {
  const address = config.address.replace(/^\[(.*)\]$/, '$1');
  if (/^(0\.0\.0\.0|::)$/.test(address))
    throw invalidArgument(
      `export.address: NBD has no access control: bind to the one address the hosts reach, not ${config.address}`,
    );
  const [first, last] = config.ports;
  const runDir = nbdRunDir();
  const pidFile = (volumeId: string) => join(runDir, `${validateId(volumeId, 'volume id')}.pid`);

  /** The live qemu-nbd of a volume, from its pid file; null when there is none. */
  async function running(volumeId: string): Promise<Server | null> {
    const pid = Number((await readFile(pidFile(volumeId), 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    const argv = await liveCmdline(pid);
    // The pid may have been reused by something else since: only our own command line counts.
    if (!argv || basename(argv[0] ?? '') !== 'qemu-nbd' || !argv.includes(`--export-name=${volumeId}`))
      return null;
    const opt = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    const sep = argv.indexOf('--');
    return {
      pid,
      port: Number(opt('port')),
      readOnly: argv.includes('--read-only'),
      path: sep >= 0 ? (argv[sep + 1] ?? '') : '',
    };
  }

  async function start(target: ExportTarget, readOnly: boolean, fixedPort?: number): Promise<number> {
    const { listening } = await tcpSockets();
    const candidates: number[] = [];
    if (fixedPort !== undefined) candidates.push(fixedPort);
    else for (let p = first; p <= last; p++) if (!listening.has(p)) candidates.push(p);
    for (const port of candidates) {
      const argv = [
        'qemu-nbd',
        '--fork',
        '--persistent',
        '--shared=0',
        '--format=raw',
        `--bind=${address}`,
        `--port=${port}`,
        `--export-name=${target.volumeId}`,
        `--description=cairn volume ${target.volumeId}`,
        `--pid-file=${pidFile(target.volumeId)}`,
        '--cache=writeback',
        '--discard=unmap',
        ...(readOnly ? ['--read-only'] : []),
        '--',
        target.path,
      ];
      try {
        await ctx.runner.run(argv, { root: true, timeoutMs: 30_000 });
        return port;
      } catch (err) {
        // Taken since /proc/net/tcp was read (another exporter, another program): the next one.
        if (fixedPort === undefined && /Address already in use/i.test((err as Error).message)) continue;
        throw err;
      }
    }
    throw backendFailure(
      fixedPort === undefined
        ? `no free NBD port in ${first}-${last} on ${address}`
        : `qemu-nbd could not listen on ${address}:${fixedPort} again`,
    );
  }

  /** Stops a server and waits until it is gone: SIGTERM, then SIGKILL after 10 s. */
  async function stop(volumeId: string, server: Server): Promise<void> {
    for (const [signal, waitMs] of [
      ['TERM', 10_000],
      ['KILL', 5_000],
    ] as const) {
      await ctx.runner
        .run(['kill', `-${signal}`, String(server.pid)], { root: true, timeoutMs: 10_000 })
        .catch(() => {}); // gone already
      const end = Date.now() + waitMs;
      while (Date.now() < end) {
        if ((await liveCmdline(server.pid)) === null) {
          await unlink(pidFile(volumeId)).catch(() => {});
          return;
        }
        await sleep(50);
      }
    }
    throw backendFailure(`qemu-nbd (pid ${server.pid}) of volume ${volumeId} did not exit`);
  }

  function info(volumeId: string, port: number, readOnly: boolean): ConnectionInfo {
    return { protocol: 'nbd', data: { host: address, port, exportName: volumeId, readOnly } };
  }

  async function stopIfRunning(volumeId: string): Promise<void> {
    const server = await running(volumeId);
    if (server) await stop(volumeId, server);
    else await unlink(pidFile(volumeId)).catch(() => {});
  }

  return {
    protocol: 'nbd',
    onlineResize: false,

    validateConnector() {
      // Any host: access is by network reachability of the bind address only (see above).
    },

    async export(target, _connector, mode) {
      if (!target.path.startsWith('/')) throw invalidArgument(`export path must be absolute: ${target.path}`);
      const server = await running(target.volumeId);
      if (server) {
        if (server.path !== target.path)
          throw conflict(
            `qemu-nbd (pid ${server.pid}) exports ${server.path} as ${target.volumeId}, not ${target.path}`,
          );
        if (server.readOnly && mode === 'rw')
          throw invalidState(
            `volume ${target.volumeId} is exported read-only over NBD; disconnect its read-only connections before connecting read-write`,
          );
        return info(target.volumeId, server.port, mode === 'ro');
      }
      await mkdir(runDir, { recursive: true, mode: 0o700 });
      await unlink(pidFile(target.volumeId)).catch(() => {}); // a stale one
      return info(target.volumeId, await start(target, mode === 'ro'), mode === 'ro');
    },

    async unexport(target) {
      // qemu-nbd does not know its clients: the export goes with the connection (no multi-attach).
      await stopIfRunning(target.volumeId);
    },

    async remove(volumeId) {
      await stopIfRunning(volumeId);
    },

    async resize(target) {
      const server = await running(target.volumeId);
      if (!server) return; // not exported: the next export reads the new size
      const clients = (await tcpSockets()).established.get(server.port) ?? 0;
      if (clients > 0)
        throw invalidState(
          `volume ${target.volumeId} is attached over NBD (${clients} connection(s) to port ${server.port}): NBD cannot grow a connected device; detach it, extend, and attach again`,
        );
      await stop(target.volumeId, server);
      await start(target, server.readOnly, server.port);
    },

    async close() {},
  };
}
