import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { stateStoreFailure } from '../util/errors.js';
import { ensurePrivateDir, ensurePrivateFile } from '../util/fsx.js';
import { MIGRATION_TABLE, migrate, schemaStatus } from './migrations.js';
import type { StateStore, StateStoreContext } from './spi.js';
import { createSqlStore, type SqlExecutor } from './sql-store.js';

type Database = BetterSqlite3.Database;

/**
 * The embedded default store: one SQLite file in WAL mode, safe for several processes at once
 * (a writer waits on SQLite's lock for up to `busyTimeoutMs`). `path` may be `:memory:`.
 */
export async function createSqliteStore(
  path: string,
  ctx: StateStoreContext,
  busyTimeoutMs = 10_000,
): Promise<StateStore> {
  const { default: Sqlite } = await import('better-sqlite3');
  const inMemory = path === ':memory:';
  const file = inMemory ? path : resolve(path);
  const location = inMemory ? 'sqlite::memory:' : `sqlite:${file}`;
  if (!inMemory) {
    await ensurePrivateDir(dirname(file));
    await ensurePrivateFile(file);
  }
  let db: Database;
  try {
    db = new Sqlite(file, { timeout: busyTimeoutMs });
  } catch (err) {
    throw openError(location, err);
  }
  try {
    // Look before writing anything: a foreign or newer database must be left byte-identical.
    const applied = appliedMigrations(db);
    if (applied === null) refuseForeign(db, location);
    const status = schemaStatus(applied, location);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    if (status === 'migrate') {
      // An in-memory database is private to its connection: migrate through that connection.
      await ctx.withLock(`state-migrate:${file}`, () =>
        migrateWith(inMemory ? db : new Sqlite(file, { timeout: busyTimeoutMs }), location, !inMemory),
      );
    }
  } catch (err) {
    db.close();
    throw openError(location, err);
  }
  return createSqlStore({ kind: 'sqlite', location, sql: sqliteExecutor(db) });
}

/** Names of the applied migrations, or null when the database has no Cairn schema. */
function appliedMigrations(db: Database): string[] | null {
  const table = db
    .prepare("select name from sqlite_master where type = 'table' and name = ?")
    .get(MIGRATION_TABLE);
  if (!table) return null;
  return (db.prepare(`select name from ${MIGRATION_TABLE}`).all() as Array<{ name: string }>).map(
    (r) => r.name,
  );
}

function refuseForeign(db: Database, location: string): void {
  const tables = db
    .prepare(
      "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'cairn_%'",
    )
    .all() as Array<{ name: string }>;
  if (tables.length > 0) {
    throw stateStoreFailure(
      `${location} is not a Cairn state store: it holds other tables (${tables
        .slice(0, 5)
        .map((t) => t.name)
        .join(', ')}) and no Cairn schema`,
    );
  }
}

async function migrateWith(db: Database, location: string, closeAfter: boolean): Promise<void> {
  const { Kysely, SqliteDialect } = await import('kysely');
  // Kysely closes the connection it was given on destroy; keep an in-memory one open.
  const database = closeAfter
    ? db
    : new Proxy(db, { get: (t, k) => (k === 'close' ? () => {} : Reflect.get(t, k, t)) });
  const kysely = new Kysely<unknown>({ dialect: new SqliteDialect({ database }) });
  try {
    await migrate(kysely, location);
  } finally {
    await kysely.destroy();
  }
}

function sqliteExecutor(db: Database): SqlExecutor {
  // Prepared statements are cached: the store issues a handful of fixed statements.
  const cache = new Map<string, BetterSqlite3.Statement>();
  const prepare = (sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      cache.set(sql, stmt);
    }
    return stmt;
  };
  const runAll = db.transaction((statements: ReadonlyArray<readonly [string, readonly unknown[]]>) => {
    for (const [sql, params] of statements) prepare(sql).run(...params);
  });
  return {
    async query<T>(sql: string, params: readonly unknown[]) {
      return prepare(sql).all(...params) as T[];
    },
    async execute(sql, params) {
      return prepare(sql).run(...params).changes;
    },
    async batch(statements) {
      runAll.immediate(statements);
    },
    isUniqueViolation: (err) =>
      /^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)$/.test((err as { code?: string }).code ?? ''),
    async close() {
      db.close();
    },
  };
}

function openError(location: string, err: unknown) {
  if ((err as { code?: string }).code === 'SQLITE_NOTADB') {
    return stateStoreFailure(`${location} is not a SQLite database (is it a Cairn state file?)`, {
      cause: err,
    });
  }
  if ((err as { code?: string }).code === 'STATE_STORE_FAILURE') return err as Error;
  return stateStoreFailure(`cannot open ${location}: ${(err as Error).message}`, { cause: err });
}
