import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Cairn } from '../src/index.js';
import { startCeph } from '../test/harness/ceph.js';
import type { Benchmark } from './context.js';
import { type CaseResult, compare, type Measurement, notRun } from './report.js';
import { now, opsPerSecond, summarize } from './stats.js';

const NAME = 'rbd';
const MiB = 1024 * 1024;
const execFileP = promisify(execFile);

/** Per-operation latency through Cairn's rbd driver vs the bare `rbd` CLI, on one private cluster. */
export const rbd: Benchmark = {
  name: NAME,
  description:
    'Ceph RBD on a private single-node cluster: create, snapshot, clone, extend, delete, and create+delete at concurrency 1 and 8, through Cairn vs the raw rbd CLI',
  async run(ctx) {
    let ceph: Awaited<ReturnType<typeof startCeph>> | undefined;
    let cairn: Cairn | undefined;
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
      const n = ctx.quick ? 3 : 15;
      const ops = {
        create: [] as number[],
        snapshot: [] as number[],
        clone: [] as number[],
        extend: [] as number[],
        delete: [] as number[],
      };
      const rawOps = {
        create: [] as number[],
        snapshot: [] as number[],
        clone: [] as number[],
        extend: [] as number[],
        delete: [] as number[],
      };
      const time = async <T>(into: number[], fn: () => Promise<T>): Promise<T> => {
        const a = now();
        const r = await fn();
        into.push(now() - a);
        return r;
      };
      ctx.log(`${NAME}: per-operation latency, ${n} rounds`);
      for (let i = 0; i < n; i++) {
        const vol = await time(ops.create, () => pool.createVolume({ size: 64 * MiB }));
        const snap = await time(ops.snapshot, () => vol.createSnapshot());
        const clone = await time(ops.clone, () => vol.clone());
        await time(ops.extend, () => vol.extend(128 * MiB));
        await snap.delete();
        await time(ops.delete, () => clone.delete());
        await vol.delete();
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
      }
      const results: CaseResult[] = [];
      const perOp: Measurement[] = [];
      for (const op of Object.keys(ops) as Array<keyof typeof ops>) {
        const m: Measurement = { label: `cairn ${op}`, role: 'cairn', latency: summarize(ops[op]) };
        const f: Measurement = { label: `rbd CLI ${op}`, role: 'floor', latency: summarize(rawOps[op]) };
        compare(m, f);
        perOp.push(m, f);
      }
      results.push({
        benchmark: NAME,
        case: 'per-operation latency (64 MiB image)',
        status: 'ok',
        measurements: perOp,
        notes: [`cluster start (1 mon, 1 memstore OSD, pool ready): ${Math.round(startMs)} ms`],
      });
      for (const conc of [1, 8]) {
        const per = ctx.quick ? 2 : Math.max(2, Math.round(40 / conc));
        ctx.log(`${NAME}: create+delete, concurrency ${conc}`);
        const loops = async (cycle: () => Promise<void>) => {
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
        };
        const cr = await loops(async () => {
          const v = await pool.createVolume({ size: 64 * MiB });
          await v.delete();
        });
        const rr = await loops(async () => {
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
        results.push({
          benchmark: NAME,
          case: `create+delete, concurrency ${conc}`,
          status: 'ok',
          measurements: [m, f],
          notes: [],
        });
      }
      return results;
    } catch (err) {
      return [notRun(NAME, 'rbd', 'error', (err as Error).message)];
    } finally {
      await cairn?.close().catch(() => {});
      await ceph?.stop().catch(() => {});
      dir.remove();
    }
  },
};
