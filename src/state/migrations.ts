import { type Kysely, type Migration, type MigrationProvider, sql } from 'kysely';
import { stateStoreFailure } from '../util/errors.js';

/**
 * The schema of every SQL store (SQLite, PostgreSQL, MySQL/MariaDB). Objects are JSON
 * documents with the columns that are filtered on lifted out, so adding a field to a record
 * needs no migration; indexes and constraints do.
 */
export const MIGRATIONS: Record<string, Migration> = {
  '0001_objects': {
    async up(db: Kysely<unknown>) {
      const options = await tableOptions(db);
      await db.schema
        .createTable('cairn_objects')
        .addColumn('kind', 'varchar(16)', (c) => c.notNull())
        .addColumn('id', 'varchar(64)', (c) => c.notNull())
        .addColumn('backend', 'varchar(255)', (c) => c.notNull())
        .addColumn('name', 'varchar(255)')
        .addColumn('volume_id', 'varchar(64)')
        .addColumn('host', 'varchar(255)')
        .addColumn('status', 'varchar(32)', (c) => c.notNull())
        .addColumn('version', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'varchar(40)', (c) => c.notNull())
        .addColumn('data', documentType(db), (c) => c.notNull())
        .addPrimaryKeyConstraint('cairn_objects_pk', ['kind', 'id'])
        .$call((t) => (options ? t.modifyEnd(options) : t))
        .execute();
      await db.schema
        .createIndex('cairn_objects_name')
        .on('cairn_objects')
        .columns(['kind', 'backend', 'name'])
        .unique()
        .execute();
      await db.schema
        .createIndex('cairn_objects_volume')
        .on('cairn_objects')
        .columns(['kind', 'volume_id'])
        .execute();
      await db.schema
        .createIndex('cairn_objects_order')
        .on('cairn_objects')
        .columns(['kind', 'created_at', 'id'])
        .execute();
      await db.schema
        .createTable('cairn_kv')
        .addColumn('kv_key', 'varchar(255)', (c) => c.primaryKey())
        .addColumn('kv_value', documentType(db), (c) => c.notNull())
        .$call((t) => (options ? t.modifyEnd(options) : t))
        .execute();
    },
  },
};

export const MIGRATION_TABLE = 'cairn_migration';

/**
 * The column type of a JSON document. MySQL's `text` holds only 64 KiB, too little for large
 * metadata, so MySQL and MariaDB get `longtext`; SQLite and PostgreSQL `text` are unbounded.
 */
function documentType(db: Kysely<unknown>) {
  return sql.raw(dialectOf(db) === 'mysql' ? 'longtext' : 'text');
}

function dialectOf(db: Kysely<unknown>): 'sqlite' | 'postgres' | 'mysql' | 'other' {
  const adapter = db.getExecutor().adapter.constructor.name;
  if (adapter === 'SqliteAdapter') return 'sqlite';
  if (adapter === 'PostgresAdapter') return 'postgres';
  return adapter === 'MysqlAdapter' ? 'mysql' : 'other';
}

/**
 * Table options. MySQL and MariaDB: InnoDB (transactions, whatever the server's default
 * engine), utf8mb4 (4-byte unicode), and a binary collation that does not pad (names and keys
 * compare exactly, as in SQLite and PostgreSQL: "Data" is not "data", "data " is not "data"),
 * whatever the database's default charset and collation are. Others: none.
 */
async function tableOptions(db: Kysely<unknown>) {
  if (dialectOf(db) !== 'mysql') return null;
  const { rows } = await sql<{
    c: string;
  }>`select collation_name as c from information_schema.collations where collation_name in ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')`.execute(
    db,
  );
  // MariaDB has utf8mb4_nopad_bin, MySQL 8 utf8mb4_0900_bin; older ones only the padding one.
  const collation = rows.map((r) => r.c).sort()[0] ?? 'utf8mb4_bin';
  return sql.raw(`engine = InnoDB default charset = utf8mb4 collate = ${collation}`);
}

/** The refusal of a database holding tables named like Cairn's but no migration table. */
export function foreignCairnTables(tables: readonly string[], location: string) {
  return stateStoreFailure(
    `${location} is not a Cairn state store: it holds tables named like Cairn's (${[...tables]
      .sort()
      .slice(0, 5)
      .join(', ')}) but no ${MIGRATION_TABLE} table; refusing to touch them`,
  );
}

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

/**
 * Compares the migrations a database has applied (null: no Cairn schema yet) with the ones this
 * Cairn knows. Cheap: stores call it on every open with a plain query, and load Kysely only
 * when it says `migrate`, which keeps Kysely's import time off a CLI command's start-up.
 * @throws CairnError STATE_STORE_FAILURE for a schema newer than this Cairn
 */
export function schemaStatus(applied: readonly string[] | null, location: string): 'current' | 'migrate' {
  if (applied === null) return 'migrate';
  const unknown = applied.filter((n) => !(n in MIGRATIONS));
  if (unknown.length > 0) throw newerSchema(unknown, location);
  return Object.keys(MIGRATIONS).every((n) => applied.includes(n)) ? 'current' : 'migrate';
}

function newerSchema(unknown: string[], location: string) {
  return stateStoreFailure(
    `state store ${location} has schema ${unknown.sort().at(-1)}, newer than this Cairn knows (up to ${Object.keys(MIGRATIONS).sort().at(-1)}); upgrade Cairn to use it`,
  );
}

/**
 * Brings the schema up to date. Refuses a database whose schema is newer than this Cairn, or
 * which holds other tables but no Cairn schema (someone else's database).
 */
export async function migrate(db: Kysely<unknown>, location: string): Promise<void> {
  const dialect = dialectOf(db);
  // PostgreSQL lists the tables of every schema: look only at the one Cairn's tables go to.
  const schema = dialect === 'postgres' ? await currentSchema(db, location) : undefined;
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  const names = tables.filter((t) => schema === undefined || t.schema === schema).map((t) => t.name);
  if (names.includes(MIGRATION_TABLE)) {
    const rows = await (schema === undefined ? db : db.withSchema(schema))
      .selectFrom(MIGRATION_TABLE as never)
      .select('name' as never)
      .execute();
    schemaStatus(
      rows.map((r) => (r as { name: string }).name),
      location,
    );
  } else if (dialect === 'sqlite') {
    const foreign = names.filter((n) => !n.startsWith('cairn_') && !n.startsWith('sqlite_'));
    if (foreign.length > 0) {
      throw stateStoreFailure(
        `${location} is not a Cairn state store: it holds other tables (${foreign.slice(0, 5).join(', ')}) and no Cairn schema`,
      );
    }
  } else {
    // A server database is often shared: other tables are fine, tables named like Cairn's are not.
    const ours = names.filter((n) => n.startsWith('cairn_'));
    if (ours.length > 0) throw foreignCairnTables(ours, location);
  }
  const { Migrator } = await import('kysely');
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: `${MIGRATION_TABLE}_lock`,
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  });
  const { error } = await migrator.migrateToLatest();
  if (error)
    throw stateStoreFailure(`could not migrate state store ${location}: ${(error as Error).message}`, {
      cause: error,
    });
}

async function currentSchema(db: Kysely<unknown>, location: string): Promise<string> {
  const { rows } = await sql<{ s: string | null }>`select current_schema() as s`.execute(db);
  const schema = rows[0]?.s;
  if (!schema)
    throw stateStoreFailure(
      `state store ${location}: no schema to create tables in (none of the search_path exists)`,
    );
  return schema;
}
