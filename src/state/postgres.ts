import type { Pool, PoolClient, PoolConfig } from 'pg';
import { ErrorCode, isCairnError, stateStoreFailure } from '../util/errors.js';
import { MIGRATION_TABLE, migrate } from './migrations.js';
import { checkoutUntil, lockBusy, openFailure, retryRace, scrub, serverSchemaStatus } from './server.js';
import type { StateStore } from './spi.js';
import { createSqlStore, type SqlExecutor } from './sql-store.js';
import type { ServerUrl } from './url.js';

/** Each operation in progress holds up to three object locks, each on a connection of its own. */
const LOCKS_PER_CONNECTION = 3;

/**
 * A state store on PostgreSQL: the shared SQL store over a `pg` pool, plus locks shared by every
 * process and host (session advisory locks, each on a connection of a pool of its own, so
 * held locks never starve statements of connections). `pg` is loaded only here.
 */
export async function createPostgresStore(target: ServerUrl): Promise<StateStore> {
  const { default: pg } = await import('pg');
  const config = (max: number): PoolConfig => ({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: target.database,
    max,
    connectionTimeoutMillis: target.connectTimeoutMs,
    idleTimeoutMillis: 10_000,
    allowExitOnIdle: true,
    application_name: 'cairn',
  });
  const pools: Pool[] = [];
  const newPool = (max: number) => {
    const pool = new pg.Pool(config(max));
    // A connection that dies while idle is dropped by the pool; without a listener it would
    // crash the process.
    pool.on('error', () => {});
    pools.push(pool);
    return pool;
  };
  const endAll = () => Promise.all(pools.map((p) => p.end().catch(() => {})));
  const pool = newPool(target.poolSize);
  const lockPool = newPool(target.poolSize * LOCKS_PER_CONNECTION);

  try {
    if ((await schemaState(pool, target.location)) === 'migrate') {
      const { Kysely, PostgresDialect } = await import('kysely');
      // Kysely's migrator holds a PostgreSQL advisory lock while it works: concurrent first
      // opens, from any host, migrate once. Its pool is its own: destroy() ends it.
      const kysely = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: newPool(2) }) });
      try {
        await migrate(kysely, target.location);
      } finally {
        await kysely.destroy();
      }
    }
  } catch (err) {
    await endAll();
    throw openFailure(target, err, reasonOf(err));
  }

  const store = createSqlStore({ kind: 'postgres', location: target.location, sql: executor(pool) });
  const held = new Set<PoolClient>();
  const close = store.close.bind(store);
  return Object.assign(store, {
    lock: (key: string, deadline: number) => lock(lockPool, held, key, deadline, target),
    async close() {
      for (const client of held) client.release(true);
      held.clear();
      await close();
      await endAll();
    },
  });
}

/** Reads the `cairn_*` tables and the applied migrations, writing nothing. */
async function schemaState(pool: Pool, location: string): Promise<'current' | 'migrate'> {
  const { rows } = await pool.query<{ name: string }>(
    "select table_name as name from information_schema.tables where table_schema = current_schema() and table_name like 'cairn%'",
  );
  const tables = rows.map((r) => r.name).filter((n) => n.startsWith('cairn_'));
  const applied = tables.includes(MIGRATION_TABLE)
    ? (await pool.query<{ name: string }>(`select name from ${MIGRATION_TABLE}`)).rows.map((r) => r.name)
    : null;
  return serverSchemaStatus(tables, applied, location);
}

/** Words for the server's refusals that matter on open (SQLSTATE classes 28 and 3D). */
function reasonOf(err: unknown): string | undefined {
  const { code, message } = err as { code?: string; message?: string };
  if (code === '3D000') return `${message}; create it first (Cairn creates tables, not databases)`;
  if (code === '28P01' || code === '28000') return `authentication failed: ${message}`;
  return undefined;
}

const RACES = new Set(['23505', '40001', '40P01']);
const DEADLOCKS = new Set(['40001', '40P01']);
const codeOf = (err: unknown) => (err as { code?: string }).code ?? '';

function executor(pool: Pool): SqlExecutor {
  // `?` placeholders numbered as `$1..$n`. The statements are fixed (a few dozen at most), so
  // each is prepared once per connection, by name: that halves the work of a simple read.
  const statements = new Map<string, { name: string; text: string }>();
  const statement = (sql: string, params: readonly unknown[]) => {
    let s = statements.get(sql);
    if (s === undefined) {
      let n = 0;
      s = { name: `cairn_${statements.size}`, text: sql.replace(/\?/g, () => `$${++n}`) };
      statements.set(sql, s);
    }
    return { ...s, values: [...params] };
  };
  const run = async (sql: string, params: readonly unknown[]) => {
    try {
      return await retryRace(
        () => pool.query(statement(sql, params)),
        (err) => DEADLOCKS.has(codeOf(err)),
      );
    } catch (err) {
      throw scrub(err);
    }
  };
  return {
    async query<T>(sql: string, params: readonly unknown[]) {
      return (await run(sql, params)).rows as T[];
    },
    async execute(sql, params) {
      return (await run(sql, params)).rowCount ?? 0;
    },
    async batch(batch) {
      await retryRace(
        async () => {
          const client = await pool.connect();
          let broken: Error | undefined;
          try {
            await client.query('begin');
            for (const [sql, params] of batch) await client.query(statement(sql, params));
            await client.query('commit');
          } catch (err) {
            await client.query('rollback').catch((e: Error) => {
              broken = e;
            });
            throw err;
          } finally {
            client.release(broken);
          }
        },
        (err) => RACES.has(codeOf(err)),
      );
    },
    isUniqueViolation: (err) => codeOf(err) === '23505',
    async close() {
      await pool.end();
    },
  };
}

/**
 * Takes the session advisory lock of `key` on a connection of its own, waiting in the server's
 * lock queue (first come, first served) until `deadline`. The server releases it when the
 * connection ends, so a holder killed with SIGKILL frees its locks at once.
 */
async function lock(
  lockPool: Pool,
  held: Set<PoolClient>,
  key: string,
  deadline: number,
  target: ServerUrl,
): Promise<() => Promise<void>> {
  const client = await checkoutUntil(() => lockPool.connect(), {
    deadline,
    exhausted: () => lockPool.totalCount >= (lockPool.options.max ?? 10) && lockPool.idleCount === 0,
    giveBack: (c) => c.release(),
    busy: () => lockBusy(key, target.location),
    failure: (err) => lockFailure(key, target, err),
  });
  const ignore = () => {};
  client.on('error', ignore);
  try {
    const wait = Math.ceil(deadline - Date.now());
    if (wait <= 0) {
      const { rows } = await client.query<{ ok: boolean }>(
        'select pg_try_advisory_lock(hashtextextended($1, 0)) as ok',
        [key],
      );
      if (!rows[0]?.ok) throw lockBusy(key, target.location);
    } else {
      // lock_timeout, set for this statement only, bounds the wait in the server.
      await client
        .query(
          "with t as (select set_config('lock_timeout', $2, true)) select pg_advisory_lock(hashtextextended($1, 0)) from t",
          [key, `${wait}ms`],
        )
        .catch((err: unknown) => {
          throw codeOf(err) === '55P03' ? lockBusy(key, target.location) : err;
        });
    }
  } catch (err) {
    const waited = isCairnError(err, ErrorCode.Busy);
    client.off('error', ignore);
    // A connection that failed is not reused.
    client.release(waited ? undefined : true);
    throw waited ? err : lockFailure(key, target, err);
  }
  held.add(client);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    held.delete(client);
    try {
      await client.query('select pg_advisory_unlock(hashtextextended($1, 0))', [key]);
      client.off('error', ignore);
      client.release();
    } catch {
      // The connection is gone, and the server dropped its locks with it.
      client.release(true);
    }
  };
}

function lockFailure(key: string, target: ServerUrl, err: unknown) {
  return stateStoreFailure(
    `state store ${target.location}: taking lock "${key}" failed: ${(err as Error).message}`,
    { cause: scrub(err, target) },
  );
}
