import { dirname, resolve } from 'node:path';
import { Kysely, SqliteDialect } from 'kysely';
import { stateStoreFailure } from '../util/errors.js';
import { ensurePrivateDir, ensurePrivateFile } from '../util/fsx.js';
import { migrate } from './migrations.js';
import type { StateStore, StateStoreContext } from './spi.js';
import { createSqlStore } from './sql-store.js';

/**
 * The embedded default store: one SQLite file in WAL mode, safe for several processes at once
 * (writers wait on SQLite's lock for up to `busyTimeoutMs`). `path` may be `:memory:`.
 */
export async function createSqliteStore(
  path: string,
  ctx: StateStoreContext,
  busyTimeoutMs = 10_000,
): Promise<StateStore> {
  const { default: Database } = await import('better-sqlite3');
  const inMemory = path === ':memory:';
  const file = inMemory ? path : resolve(path);
  const location = inMemory ? 'sqlite::memory:' : `sqlite:${file}`;
  if (!inMemory) {
    await ensurePrivateDir(dirname(file));
    await ensurePrivateFile(file);
  }
  let sqlite: InstanceType<typeof Database>;
  try {
    sqlite = new Database(file, { timeout: busyTimeoutMs });
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
  } catch (err) {
    throw stateStoreFailure(`cannot open ${location}: ${describe(err)}`, { cause: err });
  }
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    await ctx.withLock(`state-migrate:${file}`, () => migrate(db, location));
  } catch (err) {
    await db.destroy();
    if ((err as { code?: string }).code === 'SQLITE_NOTADB')
      throw stateStoreFailure(`${location} is not a SQLite database`, { cause: err });
    throw err;
  }
  return createSqlStore({
    kind: 'sqlite',
    location,
    db,
    isUniqueViolation: (err) =>
      /^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)$/.test((err as { code?: string }).code ?? ''),
  });
}

function describe(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'SQLITE_NOTADB') return 'the file is not a SQLite database';
  return (err as Error).message;
}
