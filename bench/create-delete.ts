import { randomUUID } from 'node:crypto';
import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Cairn } from '../src/index.js';
import type { BenchContext, Benchmark } from './context.js';
import { type ServerKind, throwawayDatabase } from './databases.js';
import { type CaseResult, compare, type Measurement, notRun } from './report.js';
import { now, opsPerSecond, summarize } from './stats.js';

const NAME = 'create-delete';
const SIZE = 64 * 1024 * 1024;

/** Per-cycle timings of a run of concurrent create → delete loops. */
interface Samples {
  create: number[];
  delete: number[];
  cycle: number[];
  wallMs: number;
}

const empty = (): Samples => ({ create: [], delete: [], cycle: [], wallMs: 0 });

/** Runs `loops` concurrent loops of `perLoop` create → delete cycles, adding to `into`. */
async function runLoops(
  loops: number,
  perLoop: number,
  make: () => Promise<() => Promise<void>>,
  into: Samples,
): Promise<void> {
  const t0 = now();
  await Promise.all(
    Array.from({ length: loops }, async () => {
      for (let i = 0; i < perLoop; i++) {
        const a = now();
        const remove = await make();
        const b = now();
        await remove();
        const c = now();
        into.create.push(b - a);
        into.delete.push(c - b);
        into.cycle.push(c - a);
      }
    }),
  );
  into.wallMs += now() - t0;
}

function measurements(label: string, role: 'cairn' | 'floor', s: Samples): Measurement[] {
  return [
    {
      label: `${label} create+delete`,
      role,
      latency: summarize(s.cycle),
      opsPerSec: opsPerSecond(s.cycle.length, s.wallMs),
    },
    { label: `${label} create`, role, latency: summarize(s.create) },
    { label: `${label} delete`, role, latency: summarize(s.delete) },
  ];
}

type StateKind = 'sqlite' | 'memory' | ServerKind;
const LABEL: Record<StateKind, string> = {
  sqlite: 'sqlite:<tmp>/cairn.db',
  memory: 'memory:',
  postgres: 'postgres://127.0.0.1/<tmp db>',
  mysql: 'mysql://127.0.0.1/<tmp db> (MariaDB)',
};

async function runCase(ctx: BenchContext, state: StateKind, concurrency: number): Promise<CaseResult> {
  const name = `${LABEL[state]}, concurrency ${concurrency}`;
  const dir = ctx.tempDir(`cd-${state}-${concurrency}`);
  let cairn: Cairn | undefined;
  let database: { url: string; drop(): void } | undefined;
  try {
    const pool = join(dir.path, 'pool');
    const floorDir = join(dir.path, 'floor');
    if (state === 'postgres' || state === 'mysql') database = throwawayDatabase(ctx, state);
    // A memory: state is private to its context, so Cairn locks it in-process only.
    const url = database?.url ?? (state === 'sqlite' ? `sqlite:${join(dir.path, 'cairn.db')}` : 'memory:');
    cairn = await Cairn.open({ state: url });
    const backend = await cairn.addBackend('bench', { driver: 'file', path: pool });
    await mkdir(floorDir);

    const cairnCycle = async () => {
      const vol = await backend.createVolume({ size: SIZE });
      return () => vol.delete();
    };
    const floorCycle = async () => {
      const path = join(floorDir, `volume-${randomUUID()}`);
      const fh = await open(path, 'wx', 0o600);
      await fh.truncate(SIZE);
      await fh.close();
      return () => unlink(path);
    };

    // Rounds alternate Cairn and the floor, so drift (page cache, CPU frequency, a neighbour's
    // load) hits both alike. Warm-up cycles (JIT, SQLite's cache) are not counted.
    const total = ctx.quick ? 40 : 2000;
    const rounds = ctx.quick ? 1 : 5;
    const perLoop = Math.max(1, Math.round(total / rounds / concurrency));
    const warm = empty();
    await runLoops(concurrency, ctx.quick ? 3 : 10, cairnCycle, warm);
    await runLoops(concurrency, ctx.quick ? 3 : 10, floorCycle, warm);
    const c = empty();
    const f = empty();
    for (let r = 0; r < rounds; r++) {
      ctx.log(`${NAME}: ${name}: round ${r + 1}/${rounds}`);
      await runLoops(concurrency, perLoop, cairnCycle, c);
      await runLoops(concurrency, perLoop, floorCycle, f);
    }
    const left = await backend.volumes();
    if (left.length > 0) throw new Error(`${left.length} volume(s) left after the run`);

    const [cc, ccreate, cdelete] = measurements('cairn', 'cairn', c);
    const [fc, fcreate, fdelete] = measurements('fs', 'floor', f);
    compare(cc!, fc!, 'ops/s');
    compare(ccreate!, fcreate!);
    compare(cdelete!, fdelete!);
    return {
      benchmark: NAME,
      case: name,
      status: 'ok',
      measurements: [cc!, ccreate!, cdelete!, fc!, fcreate!, fdelete!],
      notes: [],
    };
  } catch (err) {
    return notRun(NAME, name, 'error', (err as Error).message);
  } finally {
    await cairn?.close().catch(() => {});
    database?.drop();
    dir.remove();
  }
}

/** create → delete of a 64 MiB volume on the file driver, against bare open/ftruncate/unlink. */
export const createDelete: Benchmark = {
  name: NAME,
  description:
    'create → delete of a 64 MiB file-driver volume with each state store (SQLite, memory, PostgreSQL, MariaDB), concurrency 1 and 8; floor: open(wx)+ftruncate+close+unlink',
  async run(ctx) {
    const results: CaseResult[] = [];
    for (const state of ['sqlite', 'memory', 'postgres', 'mysql'] as const) {
      for (const concurrency of [1, 8]) results.push(await runCase(ctx, state, concurrency));
    }
    results[0]?.notes.push(
      'ops/s counts create+delete cycles over all loops; the floor is the same cycle done with bare fs calls in-process',
    );
    return results;
  },
};
