import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './exec.js';
import { tempDir } from './tmp.js';

/** A running single-node Ceph cluster made by {@link startCeph}. */
export interface CephCluster {
  /** Path of its ceph.conf (no cephx: no key needed). */
  conf: string;
  /** The RBD pool made for the caller (`rbd pool init` done). */
  pool: string;
  /** The monitor address list, `[v2:127.0.0.1:P,v1:127.0.0.1:Q]`. */
  monHost: string;
  /** Every file of the cluster lies under this directory. */
  dir: string;
  /** Kills the monitor only (to test a backend that stops answering). */
  stopMonitor(): Promise<void>;
  /** Kills the monitor and the OSD, keeping the directory: a cluster that answers nobody. */
  stopDaemons(): Promise<void>;
  /** Kills the monitor and the OSD (SIGTERM, then SIGKILL after a bound) and removes the directory. */
  stop(): Promise<void>;
}

const live = new Set<{ procs: ChildProcess[]; dir: string }>();
let netInstalled = false;

/** Last-resort clean-up: no daemon or directory outlives the test process. */
function installSafetyNet(): void {
  if (netInstalled) return;
  netInstalled = true;
  const killAll = () => {
    for (const c of live) {
      for (const p of c.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      rmSync(c.dir, { recursive: true, force: true });
    }
    live.clear();
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
  }
}

/** Ports in the 20000–29999 range, different per process, so parallel test files don't collide. */
function pickPorts(): [number, number] {
  const base = 20000 + ((process.pid * 7 + Math.floor(Math.random() * 1000)) % 4990) * 2;
  return [base, base + 1];
}

function daemon(argv: string[], logTo: string[]): ChildProcess {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => logTo.push(d.toString()));
  return child;
}

async function stopProc(p: ChildProcess, graceMs: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

/**
 * Starts a single-node Ceph cluster (1 monitor, 1 memstore OSD, no mgr, no cephx) on 127.0.0.1
 * with non-default ports; conf, run dir, sockets, logs and data all live in a fresh temp dir.
 * Takes about 1–2 s. A missing Ceph install fails loudly.
 */
export async function startCeph(opts: { pool?: string } = {}): Promise<CephCluster> {
  for (const bin of ['ceph-mon', 'ceph-osd', 'ceph', 'rbd', 'monmaptool', 'ceph-authtool']) {
    await run(['sh', '-c', `command -v ${bin}`]).catch(() => {
      throw new Error(
        `Ceph is not installed (${bin} is missing): run scripts/install-deps.sh (ceph-mon ceph-osd ceph-common rbd-fuse)`,
      );
    });
  }
  installSafetyNet();
  if (!/^[A-Za-z0-9-]+$/.test(hostname()))
    throw new Error(`host name ${hostname()} is not a valid CRUSH name`);
  const tmp = await tempDir('cairn-ceph-');
  const dir = tmp.path;
  const entry = { procs: [] as ChildProcess[], dir };
  live.add(entry);
  const errors: string[] = [];
  const pool = opts.pool ?? 'rbd';
  const [v2, v1] = pickPorts();
  const monHost = `[v2:127.0.0.1:${v2},v1:127.0.0.1:${v1}]`;
  const fsid = randomUUID();
  const conf = join(dir, 'ceph.conf');
  const stop = async () => {
    await Promise.all(entry.procs.map((p) => stopProc(p, 1000)));
    live.delete(entry);
    await tmp.cleanup();
  };
  try {
    await mkdir(join(dir, 'run'));
    await mkdir(join(dir, 'log'));
    await writeFile(
      conf,
      `[global]
fsid = ${fsid}
mon host = ${monHost}
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
paxos propose interval = 0.05
paxos min wait = 0.01
mon tick interval = 1
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
mon data = ${dir}/mon-$id
osd data = ${dir}/osd-$id
keyring = ${dir}/keyring
[osd]
osd objectstore = memstore
memstore device bytes = 2147483648
[client]
admin socket =
log file =
`,
    );
    const c = ['-c', conf];
    await run(['monmaptool', '--create', '--fsid', fsid, '--addv', 'a', monHost, join(dir, 'monmap')]);
    await run([
      'ceph-authtool',
      '--create-keyring',
      join(dir, 'mon.keyring'),
      '--gen-key',
      '-n',
      'mon.',
      '--cap',
      'mon',
      'allow *',
    ]);
    await run([
      'ceph-mon',
      ...c,
      '--mkfs',
      '-i',
      'a',
      '--monmap',
      join(dir, 'monmap'),
      '--keyring',
      join(dir, 'mon.keyring'),
    ]);
    entry.procs.push(daemon(['ceph-mon', ...c, '-f', '-i', 'a'], errors));
    const uuid = randomUUID();
    const id = (await run(['ceph', ...c, '--connect-timeout', '20', 'osd', 'new', uuid])).trim();
    await mkdir(join(dir, `osd-${id}`));
    await run(['ceph-osd', ...c, '-i', id, '--mkfs', '--osd-uuid', uuid]);
    entry.procs.push(daemon(['ceph-osd', ...c, '-f', '-i', id], errors));
    await run(['ceph', ...c, 'osd', 'pool', 'create', pool, '8', '8']);
    await run(['rbd', ...c, 'pool', 'init', pool]);
    await run(['ceph', ...c, 'osd', 'set-require-min-compat-client', 'mimic']);
    for (const p of entry.procs) {
      if (p.exitCode !== null) throw new Error(`a Ceph daemon exited (${p.exitCode}): ${errors.join('')}`);
    }
    return {
      conf,
      pool,
      monHost,
      dir,
      stopMonitor: async () => stopProc(entry.procs[0]!, 1000),
      stopDaemons: async () => {
        await Promise.all(entry.procs.map((p) => stopProc(p, 1000)));
      },
      stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/** Waits until `rbd ls` answers (used after a restart or to check a cluster is up). */
export async function waitRbd(conf: string, pool: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      await run(['rbd', '-c', conf, 'ls', '--pool', pool], { timeoutMs: 5000 });
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(100);
    }
  }
}
