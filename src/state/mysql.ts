import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolOptions } from 'mysql2';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { isCairnError, stateStoreFailure } from '../util/errors.js';
import { MIGRATION_TABLE, migrate } from './migrations.js';
import { checkoutUntil, lockBusy, openFailure, retryRace, scrub, serverSchemaStatus } from './server.js';
import type { StateStore } from './spi.js';
import { createSqlStore, type SqlExecutor } from './sql-store.js';
import type { ServerUrl } from './url.js';

/** Each operation in progress holds up to three object locks, each on a connection of its own. */
const LOCKS_PER_CONNECTION = 3;

/**
 * Every connection's session: strict (a value too long for its column is an error, never
 * truncated), and without modes that change how statements are read (mysql2 escapes values
 * with backslashes, which NO_BACKSLASH_ESCAPES would break; ANSI_QUOTES changes quoting).
 */
const SESSION = "set session sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'";

/**
 * A state store on MySQL or MariaDB: the shared SQL store over a `mysql2` pool, plus locks
 * shared by every process and host (`GET_LOCK`, each on a connection of a pool of its own).
 * `mysql2` is loaded only here.
 */
export async function createMysqlStore(target: ServerUrl): Promise<StateStore> {
  const { default: mysql } = await import('mysql2');
  const options = (limit: number): PoolOptions => ({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: target.database,
    charset: 'utf8mb4',
    connectTimeout: target.connectTimeoutMs,
    connectionLimit: limit,
    // maxIdle below the limit would start a timer that keeps the process alive.
    maxIdle: limit,
    supportBigNumbers: true,
    bigNumberStrings: true,
    enableKeepAlive: true,
  });
  const cores: Array<ReturnType<typeof mysql.createPool>> = [];
  const newPool = (limit: number) => {
    const core = mysql.createPool(options(limit));
    core.on('connection', (conn) => {
      // A connection that dies while idle must not crash the process: the pool drops it.
      conn.on('error', () => {});
      conn.query(SESSION, () => {});
    });
    // Idle connections don't keep the process alive (as pg's allowExitOnIdle), so a program
    // that forgets close() still ends.
    core.on('acquire', (conn) => socketOf(conn)?.ref());
    core.on('release', (conn) => socketOf(conn)?.unref());
    cores.push(core);
    return core;
  };
  const endAll = () =>
    Promise.all(
      cores.map((c) =>
        c
          .promise()
          .end()
          .catch(() => {}),
      ),
    );
  const pool = newPool(target.poolSize).promise();
  const lockLimit = target.poolSize * LOCKS_PER_CONNECTION;
  const lockPool = newPool(lockLimit).promise();

  try {
    if ((await schemaState(pool, target.location)) === 'migrate') {
      const { Kysely, MysqlDialect } = await import('kysely');
      // Kysely's migrator holds GET_LOCK while it works: concurrent first opens, from any host,
      // migrate once. Its pool is its own: destroy() ends it.
      const kysely = new Kysely<unknown>({ dialect: new MysqlDialect({ pool: newPool(2) }) });
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

  const store = createSqlStore({ kind: 'mysql', location: target.location, sql: executor(pool) });
  const held = new Set<PoolConnection>();
  // Lock calls holding or waiting for a connection of the lock pool.
  const outstanding = { n: 0 };
  const close = store.close.bind(store);
  return Object.assign(store, {
    lock: (key: string, deadline: number) =>
      lock(lockPool, lockLimit, outstanding, held, key, deadline, target),
    async close() {
      for (const conn of held) conn.destroy();
      held.clear();
      await close();
      await endAll();
    },
  });
}

const socketOf = (conn: unknown) => (conn as { stream?: Socket }).stream;

/** Reads the `cairn_*` tables and the applied migrations, writing nothing. */
async function schemaState(pool: Pool, location: string): Promise<'current' | 'migrate'> {
  const [rows] = await pool.query<RowDataPacket[]>(
    "select table_name as name from information_schema.tables where table_schema = database() and table_name like 'cairn%'",
  );
  const tables = rows.map((r) => String(r.name)).filter((n) => n.startsWith('cairn_'));
  const applied = tables.includes(MIGRATION_TABLE)
    ? (await pool.query<RowDataPacket[]>(`select name from ${MIGRATION_TABLE}`))[0].map((r) => String(r.name))
    : null;
  return serverSchemaStatus(tables, applied, location);
}

/** Words for the server's refusals that matter on open. */
function reasonOf(err: unknown): string | undefined {
  const { errno, sqlMessage } = err as { errno?: number; sqlMessage?: string };
  if (errno === 1049) return `${sqlMessage}; create it first (Cairn creates tables, not databases)`;
  if (errno === 1045 || errno === 1044 || errno === 1698) return `authentication failed: ${sqlMessage}`;
  return undefined;
}

const DUPLICATE = 1062;
const DEADLOCK = 1213;
const errnoOf = (err: unknown) => (err as { errno?: number }).errno;
/** The store's values: strings, numbers and nulls. */
const values = (params: readonly unknown[]) => [...params] as Array<string | number | null>;

function executor(pool: Pool): SqlExecutor {
  const run = async (sql: string, params: readonly unknown[]) => {
    try {
      return await retryRace(
        async () => (await pool.query(sql, values(params)))[0],
        (err) => errnoOf(err) === DEADLOCK,
      );
    } catch (err) {
      throw scrub(err);
    }
  };
  return {
    async query<T>(sql: string, params: readonly unknown[]) {
      return (await run(sql, params)) as T[];
    },
    async execute(sql, params) {
      return ((await run(sql, params)) as { affectedRows: number }).affectedRows;
    },
    async batch(statements) {
      try {
        await retryRace(
          async () => {
            const conn = await pool.getConnection();
            let broken = false;
            try {
              await conn.beginTransaction();
              for (const [sql, params] of statements) await conn.query(sql, values(params));
              await conn.commit();
            } catch (err) {
              await conn.rollback().catch(() => {
                broken = true;
              });
              throw err;
            } finally {
              if (broken) conn.destroy();
              else conn.release();
            }
          },
          (err) => errnoOf(err) === DUPLICATE || errnoOf(err) === DEADLOCK,
        );
      } catch (err) {
        throw scrub(err);
      }
    },
    isUniqueViolation: (err) => errnoOf(err) === DUPLICATE,
    async close() {
      await pool.end();
    },
  };
}

/**
 * Takes `GET_LOCK` of `key` on a connection of its own, waiting in the server until `deadline`.
 * Lock names are server-wide and at most 64 characters: the name is a hash of the database
 * and the key. The server releases the lock when the connection ends, so a holder killed with
 * SIGKILL frees its locks at once.
 */
async function lock(
  lockPool: Pool,
  limit: number,
  outstanding: { n: number },
  held: Set<PoolConnection>,
  key: string,
  deadline: number,
  target: ServerUrl,
): Promise<() => Promise<void>> {
  const name = lockName(target.database, key);
  outstanding.n++;
  let conn: PoolConnection;
  try {
    conn = await checkoutUntil(() => lockPool.getConnection(), {
      deadline,
      exhausted: () => outstanding.n > limit,
      giveBack: (c) => c.release(),
      busy: () => lockBusy(key, target.location),
      failure: (err) => lockFailure(key, target, err),
    });
  } catch (err) {
    outstanding.n--;
    throw err;
  }
  try {
    for (;;) {
      const seconds = Math.max(0, deadline - Date.now()) / 1000;
      const [rows] = await conn.query<RowDataPacket[]>('select get_lock(?, ?) as ok', [name, seconds]);
      const ok = rows[0]?.ok;
      if (ok === 1 || ok === '1') break;
      if (ok === null || ok === undefined) throw new Error(`GET_LOCK returned ${String(ok)}`);
      if (Date.now() >= deadline) throw lockBusy(key, target.location);
      // A server that rounds the timeout down to whole seconds answers early: ask again.
      await sleep(5);
    }
  } catch (err) {
    outstanding.n--;
    if (isCairnError(err)) {
      conn.release();
      throw err;
    }
    conn.destroy();
    throw lockFailure(key, target, err);
  }
  held.add(conn);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    held.delete(conn);
    outstanding.n--;
    try {
      await conn.query('select release_lock(?)', [name]);
      conn.release();
    } catch {
      // The connection is gone, and the server dropped its locks with it.
      conn.destroy();
    }
  };
}

/** The server-wide `GET_LOCK` name of `key` in `database`: 46 characters. */
export function lockName(database: string, key: string): string {
  return `cairn:${createHash('sha256').update(`${database}\0${key}`).digest('hex').slice(0, 40)}`;
}

function lockFailure(key: string, target: ServerUrl, err: unknown) {
  return stateStoreFailure(
    `state store ${target.location}: taking lock "${key}" failed: ${(err as Error).message}`,
    { cause: scrub(err, target) },
  );
}
