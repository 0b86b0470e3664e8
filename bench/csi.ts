import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { type Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { csiClient } from '../src/csi/proto.js';
import { Cairn } from '../src/index.js';
import type { BenchContext, Benchmark } from './context.js';
import { type CaseResult, compare, type Measurement, notRun } from './report.js';
import { now, opsPerSecond, summarize } from './stats.js';

const NAME = 'csi';
const MiB = 1024 * 1024;

/** The compiled proto module and the plugin binary of this checkout. */
function built(ctx: BenchContext): { main: string; proto: string } | null {
  const main = join(ctx.repoRoot, 'dist', 'src', 'csi', 'main.js');
  const proto = join(ctx.repoRoot, 'dist', 'src', 'csi', 'proto.js');
  return existsSync(main) && existsSync(proto) ? { main, proto } : null;
}

/** A sandbox: a Cairn config with one thin `file` backend and SQLite state, in a temp dir. */
function sandbox(ctx: BenchContext, prefix: string) {
  const dir = ctx.tempDir(prefix);
  const config = join(dir.path, 'cairn.yaml');
  const state = join(dir.path, 'cairn.db');
  const pool = join(dir.path, 'pool');
  writeFileSync(
    config,
    `state: sqlite:${state}\ndefaultBackend: pool\nbackends:\n  pool:\n    driver: file\n    path: ${pool}\n`,
  );
  return { dir, config, state, pool, socket: join(dir.path, 'csi.sock') };
}

type Rpc = <T = Record<string, unknown>>(method: string, req?: object) => Promise<T>;

function rpc(
  service: 'Identity' | 'Controller',
  socket: string,
  deadlineMs = 60_000,
): { call: Rpc; client: Client } {
  const Ctor = csiClient(service);
  const client = new Ctor(`unix://${socket}`, credentials.createInsecure());
  const call: Rpc = (method, req = {}) =>
    new Promise((resolve, reject) => {
      type Method = (req: object, opts: object, cb: (err: ServiceError | null, res: unknown) => void) => void;
      const fn = (client as unknown as Record<string, Method>)[method]!;
      fn.call(client, req, { deadline: Date.now() + deadlineMs }, (err: ServiceError | null, res: unknown) =>
        err ? reject(err) : resolve(res as never),
      );
    });
  return { call, client };
}

/** Resident set size of a process in bytes, from /proc (null off Linux or when it is gone). */
function rssOf(pid: number): number | null {
  try {
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Spawns `argv` and calls GetPluginInfo on `socket` until it answers; returns the time from the
 * spawn to the first answer and the running child.
 */
async function spawnUntilAnswer(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  socket: string,
): Promise<{ ms: number; child: ChildProcess }> {
  const t0 = now();
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  // A fresh client per attempt, once the socket exists: a client whose first connection failed
  // waits out grpc-js's reconnect back-off (1 s), which would be measured instead of the start.
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${argv.join(' ')} exited: ${stderr.slice(0, 500)}`);
    if (now() - t0 > 30_000) throw new Error(`no answer within 30 s: ${stderr.slice(0, 500)}`);
    if (!existsSync(socket)) {
      await sleep(1);
      continue;
    }
    const { call, client } = rpc('Identity', socket, 250);
    try {
      await call('GetPluginInfo');
      return { ms: now() - t0, child };
    } catch {
      await sleep(1);
    } finally {
      client.close();
    }
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('close', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A bare grpc-js server answering GetPluginInfo from the same proto: the floor of a start. */
function floorScript(protoModule: string, socket: string): string {
  return [
    `const { csiService } = await import(${JSON.stringify(pathToFileURL(protoModule).href)});`,
    `const { Server, ServerCredentials } = await import('@grpc/grpc-js');`,
    'const server = new Server();',
    `server.addService(csiService('Identity'), { GetPluginInfo: (_c, cb) => cb(null, { name: 'floor', vendor_version: '0' }) });`,
    `server.bindAsync(${JSON.stringify(`unix://${socket}`)}, ServerCredentials.createInsecure(), () => {});`,
  ].join('\n');
}

async function startCase(ctx: BenchContext, b: { main: string; proto: string }): Promise<CaseResult> {
  const CASE = 'plugin start: spawn → first GetPluginInfo answer';
  const sb = sandbox(ctx, 'csi-start');
  const floorSocket = join(sb.dir.path, 'floor.sock');
  const env = (mode: string) => ({
    ...process.env,
    CSI_ENDPOINT: `unix://${sb.socket}`,
    CAIRN_CSI_MODE: mode,
    CAIRN_CSI_NODE_STATE_DIR: join(sb.dir.path, 'node'),
  });
  const samples = { all: [] as number[], node: [] as number[], floor: [] as number[] };
  const rss = { all: [] as number[], floor: [] as number[] };
  try {
    const n = ctx.quick ? 3 : 15;
    for (let k = -1; k < n; k++) {
      for (const mode of ['all', 'node'] as const) {
        const { ms, child } = await spawnUntilAnswer(
          [process.execPath, b.main, '--config', sb.config],
          env(mode),
          sb.socket,
        );
        if (k >= 0) samples[mode].push(ms);
        if (k >= 0 && mode === 'all' && k < 3) {
          await sleep(1000); // idle: what the plugin holds between calls
          const r = rssOf(child.pid!);
          if (r !== null) rss.all.push(r);
        }
        await stopChild(child);
      }
      rmSync(floorSocket, { force: true }); // grpc-js does not replace a stale socket file
      const floor = await spawnUntilAnswer(
        [process.execPath, '--input-type=module', '-e', floorScript(b.proto, floorSocket)],
        { ...process.env },
        floorSocket,
      );
      if (k >= 0) samples.floor.push(floor.ms);
      if (k >= 0 && k < 3) {
        await sleep(1000);
        const r = rssOf(floor.child.pid!);
        if (r !== null) rss.floor.push(r);
      }
      await stopChild(floor.child);
    }
    const m = (label: string, role: 'cairn' | 'floor', s: number[]): Measurement => ({
      label,
      role,
      latency: summarize(s),
    });
    const all = m('cairn-csi (mode all: opens SQLite state + backend)', 'cairn', samples.all);
    const node = m('cairn-csi (mode node)', 'cairn', samples.node);
    const floor = m('node + grpc-js + proto-loader serving GetPluginInfo', 'floor', samples.floor);
    compare(all, floor);
    compare(node, floor);
    const mib = (xs: number[]) => (xs.length ? `${(Math.max(...xs) / MiB).toFixed(1)} MiB` : 'n/a');
    return {
      benchmark: NAME,
      case: CASE,
      status: 'ok',
      measurements: [all, node, floor],
      notes: [`idle RSS 1 s after start: cairn-csi (mode all) ${mib(rss.all)}; floor ${mib(rss.floor)}`],
    };
  } catch (err) {
    return notRun(NAME, CASE, 'error', (err as Error).message);
  } finally {
    sb.dir.remove();
  }
}

/** A plugin (mode controller) running for the Controller cases, and a client. */
async function withController<T>(
  ctx: BenchContext,
  b: { main: string; proto: string },
  prefix: string,
  fn: (call: Rpc, sb: ReturnType<typeof sandbox>) => Promise<T>,
): Promise<T> {
  const sb = sandbox(ctx, prefix);
  const env = { ...process.env, CSI_ENDPOINT: `unix://${sb.socket}`, CAIRN_CSI_MODE: 'controller' };
  const { child } = await spawnUntilAnswer([process.execPath, b.main, '--config', sb.config], env, sb.socket);
  const { call, client } = rpc('Controller', sb.socket);
  try {
    return await fn(call, sb);
  } finally {
    client.close();
    await stopChild(child);
    sb.dir.remove();
  }
}

const createReq = (name: string) => ({
  name,
  capacity_range: { required_bytes: String(64 * MiB) },
  volume_capabilities: [
    { mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
  ],
});

interface Samples {
  create: number[];
  delete: number[];
  wallMs: number;
}

/** `loops` concurrent loops of `perLoop` create → delete cycles. */
async function cycles(
  loops: number,
  perLoop: number,
  create: (i: string) => Promise<string>,
  remove: (id: string) => Promise<void>,
  into: Samples,
): Promise<void> {
  const t0 = now();
  let seq = 0;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      for (let i = 0; i < perLoop; i++) {
        const a = now();
        const id = await create(`bench-${process.pid}-${seq++}`);
        const b = now();
        await remove(id);
        into.create.push(b - a);
        into.delete.push(now() - b);
      }
    }),
  );
  into.wallMs += now() - t0;
}

async function createDeleteCase(
  ctx: BenchContext,
  b: { main: string; proto: string },
  concurrency: number,
): Promise<CaseResult> {
  const CASE = `CreateVolume + DeleteVolume (64 MiB, file, sqlite), concurrency ${concurrency}`;
  try {
    return await withController(ctx, b, `csi-cd-${concurrency}`, async (call, sb) => {
      const cairn = await Cairn.open({ state: `sqlite:${join(sb.dir.path, 'floor.db')}` });
      try {
        const backend = await cairn.addBackend('floor', { driver: 'file', path: join(sb.dir.path, 'floor') });
        const csi = {
          create: async (name: string) =>
            (await call<{ volume: { volume_id: string } }>('CreateVolume', createReq(name))).volume.volume_id,
          remove: async (id: string) => {
            await call('DeleteVolume', { volume_id: id });
          },
        };
        const lib = {
          create: async (name: string) => (await backend.createVolume({ size: 64 * MiB, name })).id,
          remove: async (id: string) => {
            await (await cairn.volume(id)).delete();
          },
        };
        const total = ctx.quick ? 16 : 400;
        const perLoop = Math.max(1, Math.round(total / concurrency));
        const warm: Samples = { create: [], delete: [], wallMs: 0 };
        await cycles(concurrency, 2, csi.create, csi.remove, warm);
        await cycles(concurrency, 2, lib.create, lib.remove, warm);
        const c: Samples = { create: [], delete: [], wallMs: 0 };
        const f: Samples = { create: [], delete: [], wallMs: 0 };
        const rounds = ctx.quick ? 1 : 4;
        for (let r = 0; r < rounds; r++) {
          ctx.log(`${NAME}: ${CASE}: round ${r + 1}/${rounds}`);
          await cycles(concurrency, Math.ceil(perLoop / rounds), csi.create, csi.remove, c);
          await cycles(concurrency, Math.ceil(perLoop / rounds), lib.create, lib.remove, f);
        }
        const ms = (label: string, role: 'cairn' | 'floor', s: Samples): Measurement[] => [
          {
            label: `${label} create`,
            role,
            latency: summarize(s.create),
            opsPerSec: opsPerSecond(s.create.length, s.wallMs),
          },
          {
            label: `${label} delete`,
            role,
            latency: summarize(s.delete),
            opsPerSec: opsPerSecond(s.delete.length, s.wallMs),
          },
        ];
        const [cc, cd] = ms('CSI', 'cairn', c);
        const [fc, fd] = ms('library', 'floor', f);
        compare(cc!, fc!);
        compare(cd!, fd!);
        return {
          benchmark: NAME,
          case: CASE,
          status: 'ok',
          measurements: [cc!, cd!, fc!, fd!],
          notes:
            concurrency === 1
              ? [
                  'CSI = gRPC over a unix socket to cairn-csi (mode controller); floor = the same backend.createVolume/vol.delete in-process; ops/s counts cycles over the wall time of the whole run',
                ]
              : [],
        };
      } finally {
        await cairn.close();
      }
    });
  } catch (err) {
    return notRun(NAME, CASE, 'error', (err as Error).message);
  }
}

async function listCase(ctx: BenchContext, b: { main: string; proto: string }): Promise<CaseResult> {
  const count = ctx.quick ? 100 : 1000;
  const CASE = `ListVolumes, ${count} volumes`;
  try {
    return await withController(ctx, b, 'csi-list', async (call, sb) => {
      ctx.log(`${NAME}: creating ${count} volumes`);
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < count) await call('CreateVolume', createReq(`list-${next++}`));
        }),
      );
      const cairn = await Cairn.open({ state: `sqlite:${sb.state}` });
      try {
        const reps = ctx.quick ? 3 : 20;
        const one: number[] = [];
        const paged: number[] = [];
        const floor: number[] = [];
        const page = 100;
        for (let k = -1; k < reps; k++) {
          let t = now();
          const all = await call<{ entries: unknown[] }>('ListVolumes', { max_entries: 0 });
          if (k >= 0) one.push(now() - t);
          if (all.entries.length !== count)
            throw new Error(`ListVolumes gave ${all.entries.length} of ${count}`);
          t = now();
          let seen = 0;
          let token = '';
          do {
            const res = await call<{ entries: unknown[]; next_token: string }>('ListVolumes', {
              max_entries: page,
              starting_token: token,
            });
            seen += res.entries.length;
            token = res.next_token;
          } while (token);
          if (k >= 0) paged.push(now() - t);
          if (seen !== count) throw new Error(`paged ListVolumes gave ${seen} of ${count}`);
          t = now();
          const vols = await cairn.volumes();
          if (k >= 0) floor.push(now() - t);
          if (vols.length !== count) throw new Error(`cairn.volumes() gave ${vols.length}`);
        }
        const one_: Measurement = { label: 'ListVolumes, one call', role: 'cairn', latency: summarize(one) };
        const paged_: Measurement = {
          label: `ListVolumes, pages of ${page} (all pages)`,
          role: 'cairn',
          latency: summarize(paged),
        };
        const floor_: Measurement = {
          label: 'cairn.volumes() in-process, same SQLite file',
          role: 'floor',
          latency: summarize(floor),
        };
        compare(one_, floor_);
        compare(paged_, floor_);
        return { benchmark: NAME, case: CASE, status: 'ok', measurements: [one_, paged_, floor_], notes: [] };
      } finally {
        await cairn.close();
      }
    });
  } catch (err) {
    return notRun(NAME, CASE, 'error', (err as Error).message);
  }
}

/** The CSI plugin: start-up, idle memory, Controller create/delete and ListVolumes over gRPC. */
export const csi: Benchmark = {
  name: NAME,
  description:
    'cairn-csi: spawn → first GetPluginInfo, idle RSS; CreateVolume/DeleteVolume at concurrency 1 and 8; ListVolumes of 1,000 volumes (one call, paged); floors: a bare grpc-js server, the library in-process',
  async run(ctx) {
    const b = built(ctx);
    if (!b) return [notRun(NAME, '-', 'error', 'cairn-csi not built: run npm run build')];
    const results: CaseResult[] = [await startCase(ctx, b)];
    for (const c of [1, 8]) results.push(await createDeleteCase(ctx, b, c));
    results.push(await listCase(ctx, b));
    return results;
  },
};
