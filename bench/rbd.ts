import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import {
  librbdUnavailableReason,
  loadLibrbd,
  type RbdCluster,
  type RbdIoctx,
} from '../src/drivers/rbd/librbd.js';
import { Cairn } from '../src/index.js';
import { startCeph } from '../test/harness/ceph.js';
import type { Benchmark } from './context.js';
import { type CaseResult, compare, type Measurement, notRun } from './report.js';
import { now, opsPerSecond, summarize } from './stats.js';

const NAME = 'rbd';
const MiB = 1024 * 1024;
const execFileP = promisify(execFile);
const OPS = ['create', 'snapshot', 'clone', 'extend', 'delete'] as const;
type Op = (typeof OPS)[number];
type Timings = Record<Op, number[]>;
const timings = (): Timings => ({ create: [], snapshot: [], clone: [], extend: [], delete: [] });

async function time<T>(into: number[], fn: () => Promise<T>): Promise<T> {
  const a = now();
  const r = await fn();
  into.push(now() - a);
  return r;
}

/** `conc` loops of `per` cycles each; the latency of every cycle and the wall time of all. */
async function loops(conc: number, per: number, cycle: () => Promise<void>) {
  const lat: number[] = [];
  const a = now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      for (let i = 0; i < per; i++) {
        const s = now();
        await cycle();
        lat.push(now() - s);
      }
    }),
  );
  return { lat, wall: now() - a };
}

/** One round of the bare librbd calls that match Cairn's operations (same sequence as the CLI's). */
async function librbdRound(io: RbdIoctx, into: Timings): Promise<void> {
  const img = `lib-${randomUUID()}`;
  await time(into.create, () => io.create(img, 64 * MiB));
  await time(into.snapshot, () => io.snapCreate(img, 's'));
  await time(into.clone, async () => {
    await io.snapCreate(img, 'c');
    await io.clone(img, 'c', `${img}-c`);
    await io.snapRemove(img, 'c'); // to the trash namespace: the clone still uses it
  });
  await time(into.extend, () => io.resize(img, 128 * MiB));
  await io.snapRemove(img, 's');
  await time(into.delete, () => io.remove(`${img}-c`));
  await io.remove(img);
}

/**
 * Per-operation latency through Cairn's rbd driver vs the bare `rbd` CLI and vs librbd called
 * in-process through the cairn_rbd addon, on one private cluster.
 */
export const rbd: Benchmark = {
  name: NAME,
  description:
    'Ceph RBD on a private single-node cluster: create, snapshot, clone, extend, delete, and create+delete at concurrency 1 and 8, through Cairn vs the raw rbd CLI vs librbd direct (the addon)',
  async run(ctx) {
    let ceph: Awaited<ReturnType<typeof startCeph>> | undefined;
    let cairn: Cairn | undefined;
    let cluster: RbdCluster | undefined;
    const dir = ctx.tempDir('rbd-bench');
    try {
      const t0 = now();
      ceph = await startCeph();
      const startMs = now() - t0;
      const c = ceph;
      const raw = (...args: string[]) =>
        execFileP('rbd', ['-c', c.conf, '--pool', c.pool, ...args], { encoding: 'utf8' });
      cairn = await Cairn.open({ state: `sqlite:${dir.path}/cairn.db` });
      const pool = await cairn.addBackend('ceph', { driver: 'rbd', pool: c.pool, cephConf: c.conf });
      // The same driver on the CLI path, for the two to be compared in one run.
      const forced = process.env.CAIRN_RBD_NATIVE;
      process.env.CAIRN_RBD_NATIVE = '0';
      const cliPool = await cairn
        .addBackend('ceph-cli', { driver: 'rbd', pool: c.pool, cephConf: c.conf })
        .finally(() => {
          if (forced === undefined) delete process.env.CAIRN_RBD_NATIVE;
          else process.env.CAIRN_RBD_NATIVE = forced;
        });
      // The addon is optional (built only where librbd-dev is installed): without it, a note.
      const lib = loadLibrbd();
      const notes = [
        `cluster start (1 mon, 1 memstore OSD, pool ready): ${Math.round(startMs)} ms`,
        // Cairn's driver takes the fast path when the addon loads: this says which one it had.
        `addon ${lib ? 'loaded' : 'not loaded'}, CAIRN_RBD_NATIVE=${process.env.CAIRN_RBD_NATIVE ?? '(unset)'}`,
      ];
      let io: RbdIoctx | undefined;
      if (lib) {
        const t1 = now();
        cluster = await lib.connect({ conf: c.conf, timeoutSeconds: 30 });
        io = await cluster.openIoctx(c.pool);
        notes.push(
          `librbd direct: the cairn_rbd addon (librbd ${lib.librbdVersion}) on one connection, opened in ${Math.round(now() - t1)} ms`,
        );
      } else {
        notes.push(`librbd direct: not measured: ${librbdUnavailableReason()}`);
      }
      const n = ctx.quick ? 3 : 15;
      const ops = timings();
      const cliOps = timings();
      const rawOps = timings();
      const libOps = timings();
      ctx.log(`${NAME}: per-operation latency, ${n} rounds`);
      for (let i = 0; i < n; i++) {
        for (const [b, into] of [
          [pool, ops],
          [cliPool, cliOps],
        ] as const) {
          const vol = await time(into.create, () => b.createVolume({ size: 64 * MiB }));
          const snap = await time(into.snapshot, () => vol.createSnapshot());
          const clone = await time(into.clone, () => vol.clone());
          await time(into.extend, () => vol.extend(128 * MiB));
          await snap.delete();
          await time(into.delete, () => clone.delete());
          await vol.delete();
        }
        const img = `raw-${randomUUID()}`;
        await time(rawOps.create, () => raw('create', '--size', '64M', '--image', img));
        await time(rawOps.snapshot, () =>
          raw('snap', 'create', '--no-progress', '--image', img, '--snap', 's'),
        );
        // Cairn's clone of a volume is snapshot + clone + snapshot rm (to the trash namespace).
        await time(rawOps.clone, async () => {
          await raw('snap', 'create', '--no-progress', '--image', img, '--snap', 'c');
          await raw('clone', '--image', img, '--snap', 'c', '--dest-pool', c.pool, '--dest', `${img}-c`);
          await raw('snap', 'rm', '--no-progress', '--image', img, '--snap', 'c');
        });
        await time(rawOps.extend, () => raw('resize', '--no-progress', '--image', img, '--size', '128M'));
        await raw('snap', 'rm', '--no-progress', '--image', img, '--snap', 's');
        await time(rawOps.delete, () => raw('rm', '--no-progress', '--image', `${img}-c`));
        await raw('rm', '--no-progress', '--image', img);
        if (io) await librbdRound(io, libOps);
      }
      const results: CaseResult[] = [];
      const perOp: Measurement[] = [];
      for (const op of OPS) {
        const m: Measurement = { label: `cairn ${op}`, role: 'cairn', latency: summarize(ops[op]) };
        const f: Measurement = { label: `rbd CLI ${op}`, role: 'floor', latency: summarize(rawOps[op]) };
        compare(m, f);
        const mc: Measurement = {
          label: `cairn (CLI path) ${op}`,
          role: 'cairn',
          latency: summarize(cliOps[op]),
        };
        compare(mc, f);
        perOp.push(m, mc, f);
        if (io) {
          const l: Measurement = { label: `librbd ${op}`, role: 'floor', latency: summarize(libOps[op]) };
          compare(m, l);
          perOp.push(l);
        }
      }
      results.push({
        benchmark: NAME,
        case: 'per-operation latency (64 MiB image)',
        status: 'ok',
        measurements: perOp,
        notes,
      });
      for (const conc of [1, 8]) {
        const per = ctx.quick ? 2 : Math.max(2, Math.round(40 / conc));
        ctx.log(`${NAME}: create+delete, concurrency ${conc}`);
        const cr = await loops(conc, per, async () => {
          const v = await pool.createVolume({ size: 64 * MiB });
          await v.delete();
        });
        const rr = await loops(conc, per, async () => {
          const img = `raw-${randomUUID()}`;
          await raw('create', '--size', '64M', '--image', img);
          await raw('rm', '--no-progress', '--image', img);
        });
        const m: Measurement = {
          label: 'cairn create+delete',
          role: 'cairn',
          latency: summarize(cr.lat),
          opsPerSec: opsPerSecond(cr.lat.length, cr.wall),
        };
        const f: Measurement = {
          label: 'rbd CLI create+rm',
          role: 'floor',
          latency: summarize(rr.lat),
          opsPerSec: opsPerSecond(rr.lat.length, rr.wall),
        };
        compare(m, f, 'ops/s');
        const measurements = [m, f];
        if (io) {
          const lio = io;
          const lr = await loops(conc, per, async () => {
            const img = `lib-${randomUUID()}`;
            await lio.create(img, 64 * MiB);
            await lio.remove(img);
          });
          const l: Measurement = {
            label: 'librbd create+remove',
            role: 'floor',
            latency: summarize(lr.lat),
            opsPerSec: opsPerSecond(lr.lat.length, lr.wall),
          };
          compare(m, l, 'ops/s');
          measurements.push(l);
        }
        results.push({
          benchmark: NAME,
          case: `create+delete, concurrency ${conc}`,
          status: 'ok',
          measurements,
          notes: [],
        });
      }
      return results;
    } catch (err) {
      return [notRun(NAME, 'rbd', 'error', (err as Error).message)];
    } finally {
      await cluster?.shutdown().catch(() => {});
      await cairn?.close().catch(() => {});
      await ceph?.stop().catch(() => {});
      dir.remove();
    }
  },
};
