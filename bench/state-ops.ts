/**
 * State-store operations per second, per store: insert, get by id, update, list by backend,
 * each beside the floor of one bare round trip (`select 1`) through the same database client.
 */
import { join } from 'node:path';
import { baseFields, type VolumeRecord } from '../src/core/records.js';
import { openStateStore } from '../src/state/open.js';
import type { StateStore } from '../src/state/spi.js';
import type { BenchContext, Benchmark } from './context.js';
import { type ServerKind, throwawayDatabase } from './databases.js';
import { type CaseResult, compare, type Measurement, notRun } from './report.js';
import { now, opsPerSecond, summarize } from './stats.js';

const NAME = 'state-ops';
type Kind = 'sqlite' | 'memory' | ServerKind;

const volume = (i: number): VolumeRecord => ({
  kind: 'volume',
  ...baseFields(`bench-${i.toString().padStart(8, '0')}`, 'bench'),
  name: `vol-${i}`,
  metadata: { app: 'bench', index: String(i) },
  status: 'available',
  attachStatus: 'detached',
  size: 1024 ** 3,
  sourceVolumeId: null,
  sourceSnapshotId: null,
  extraSpecs: {},
  multiattach: false,
});

/** Times `n` sequential calls of `op(i)`. */
async function timed(label: string, n: number, op: (i: number) => Promise<unknown>): Promise<Measurement> {
  const samples: number[] = [];
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const a = now();
    await op(i);
    samples.push(now() - a);
  }
  return { label, role: 'cairn', latency: summarize(samples), opsPerSec: opsPerSecond(n, now() - t0) };
}

/** A bare `select 1` through the store's own client library: the least any operation costs. */
async function roundTrip(kind: Kind, url: string, file: string): Promise<() => Promise<unknown>> {
  if (kind === 'postgres') {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return Object.assign(() => client.query('select 1'), { close: () => client.end() });
  }
  if (kind === 'mysql') {
    const mysql = await import('mysql2/promise');
    const conn = await mysql.createConnection(url);
    return Object.assign(() => conn.query('select 1'), { close: () => conn.end() });
  }
  const { default: Sqlite } = await import('better-sqlite3');
  const db = new Sqlite(file);
  const stmt = db.prepare('select 1');
  return Object.assign(async () => stmt.get(), { close: async () => db.close() });
}

async function runCase(ctx: BenchContext, kind: Kind): Promise<CaseResult> {
  const dir = ctx.tempDir(`state-${kind}`);
  let database: { url: string; drop(): void } | undefined;
  let store: StateStore | undefined;
  try {
    if (kind === 'postgres' || kind === 'mysql') database = throwawayDatabase(ctx, kind);
    const file = join(dir.path, 'cairn.db');
    const url = database?.url ?? (kind === 'sqlite' ? `sqlite:${file}` : 'memory:');
    store = await openStateStore(url, { withLock: (_key, fn) => fn() });
    const s = store;
    const n = ctx.quick ? 50 : 1000;
    const stored: VolumeRecord[] = [];
    const insert = await timed('insert (put, new)', n, async (i) => stored.push(await s.put(volume(i))));
    const get = await timed('get by id', n, (i) => s.get('volume', stored[i]!.id));
    const update = await timed('update (put, versioned)', n, async (i) => {
      stored[i] = await s.put({ ...stored[i]!, status: 'in-use' });
    });
    const listN = ctx.quick ? 5 : 50;
    const list = await timed(`list ${n} volumes`, listN, () => s.list('volume', { backend: 'bench' }));
    if (kind === 'memory') {
      return {
        benchmark: NAME,
        case: kind,
        status: 'ok',
        measurements: [insert, get, update, list],
        notes: ['no floor: no database'],
      };
    }
    const trip = await roundTrip(kind, url, file);
    const floor = await timed('select 1 round trip', n, () => trip());
    floor.role = 'floor';
    await (trip as unknown as { close(): Promise<void> }).close();
    for (const m of [insert, get, update]) compare(m, floor);
    return {
      benchmark: NAME,
      case: kind === 'mysql' ? 'mysql (MariaDB)' : kind,
      status: 'ok',
      measurements: [insert, get, update, list, floor],
      notes: [],
    };
  } catch (err) {
    return notRun(NAME, kind, 'error', (err as Error).message);
  } finally {
    await store?.close().catch(() => {});
    database?.drop();
    dir.remove();
  }
}

/** Operations per second of each state store. */
export const stateOps: Benchmark = {
  name: NAME,
  description:
    'state store insert/get/update/list per second: SQLite, memory, PostgreSQL, MariaDB; floor: select 1 through the same client',
  async run(ctx) {
    const results: CaseResult[] = [];
    for (const kind of ['sqlite', 'memory', 'postgres', 'mysql'] as const)
      results.push(await runCase(ctx, kind));
    return results;
  },
};
