import { type AnyRecord, type RecordKind, type RecordOf, recordSchemas } from '../core/records.js';
import { alreadyExists, conflict, stateStoreFailure } from '../util/errors.js';
import type { ListFilter, StateStore } from './spi.js';
import { byCreation } from './util.js';

/**
 * The few primitives the SQL store needs from a database. Statements use `?` placeholders;
 * an executor for a database that numbers them (`$1`) rewrites them.
 */
export interface SqlExecutor {
  query<T>(sql: string, params: readonly unknown[]): Promise<T[]>;
  /** Runs a statement; returns the number of rows it changed. */
  execute(sql: string, params: readonly unknown[]): Promise<number>;
  /** Runs statements atomically: all of them or none. */
  batch(statements: ReadonlyArray<readonly [string, readonly unknown[]]>): Promise<void>;
  /** True when `err` is a unique-constraint violation (each database reports it its own way). */
  isUniqueViolation(err: unknown): boolean;
  close(): Promise<void>;
}

interface ObjectRow {
  kind: string;
  id: string;
  data: string;
}

const COLUMNS = 'kind, id, backend, name, volume_id, host, status, version, created_at, data';
const INSERT = `insert into cairn_objects (${COLUMNS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const FILTER_COLUMNS: Record<keyof ListFilter, string> = {
  id: 'id',
  backend: 'backend',
  name: 'name',
  volumeId: 'volume_id',
  host: 'host',
  status: 'status',
};

/**
 * A {@link StateStore} over any SQL database with the Cairn schema (see migrations.ts). Each
 * record is a JSON document; the columns that are filtered on are lifted out of it. The
 * statements are fixed and portable, so SQLite, PostgreSQL and MySQL share them.
 */
export function createSqlStore(opts: { kind: string; location: string; sql: SqlExecutor }): StateStore {
  const { sql, location } = opts;
  const fail = (what: string, err: unknown) =>
    stateStoreFailure(`state store ${location}: ${what} failed: ${(err as Error).message}`, { cause: err });
  const guard = async <T>(what: string, p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (err) {
      throw fail(what, err);
    }
  };

  const values = (r: AnyRecord): unknown[] => [
    r.kind,
    r.id,
    r.backend,
    r.name,
    'volumeId' in r ? r.volumeId : null,
    r.kind === 'connection' ? r.host : null,
    r.status,
    r.version,
    r.createdAt,
    JSON.stringify(r),
  ];
  const fromRow = <K extends RecordKind>(row: ObjectRow): RecordOf<K> => {
    const parsed = recordSchemas[row.kind as RecordKind].safeParse(JSON.parse(row.data));
    if (!parsed.success)
      throw stateStoreFailure(
        `state store ${location}: ${row.kind} ${row.id} is corrupt: ${parsed.error.message}`,
      );
    return parsed.data as RecordOf<K>;
  };
  const writeError = (r: AnyRecord, err: unknown) =>
    sql.isUniqueViolation(err)
      ? alreadyExists(`a ${r.kind} named "${r.name}" already exists on backend ${r.backend}`)
      : fail(`writing ${r.kind} ${r.id}`, err);

  const store: StateStore = {
    kind: opts.kind,
    location,

    async get<K extends RecordKind>(kind: K, id: string) {
      const rows = await guard(
        `reading ${kind} ${id}`,
        sql.query<ObjectRow>('select kind, id, data from cairn_objects where kind = ? and id = ?', [
          kind,
          id,
        ]),
      );
      return rows[0] ? fromRow<K>(rows[0]) : null;
    },

    async list<K extends RecordKind>(kind: K, filter: ListFilter = {}) {
      let where = 'kind = ?';
      const params: unknown[] = [kind];
      for (const [key, column] of Object.entries(FILTER_COLUMNS) as Array<[keyof ListFilter, string]>) {
        if (filter[key] === undefined) continue;
        where += ` and ${column} = ?`;
        params.push(filter[key]);
      }
      const rows = await guard(
        `listing ${kind}s`,
        sql.query<ObjectRow>(
          `select kind, id, data from cairn_objects where ${where} order by created_at, id`,
          params,
        ),
      );
      // Sorted here, not only by the database: collations differ (MySQL's ignore case, some
      // PostgreSQL locales ignore punctuation), and every store must list in the same order.
      return rows.map((r) => fromRow<K>(r)).sort(byCreation);
    },

    async put<R extends AnyRecord>(record: R) {
      const stored = { ...record, version: record.version + 1 } as R;
      if (record.version === 0) {
        try {
          await sql.execute(INSERT, values(stored));
          return stored;
        } catch (err) {
          const exists = await store.get(record.kind, record.id).catch(() => null);
          if (!exists) throw writeError(record, err);
          // A record restored with version 0 is updated like any other (below).
          if (exists.version !== 0)
            throw conflict(
              `${record.kind} ${record.id} already exists in the state store (version ${exists.version})`,
            );
        }
      }
      const [, , backend, name, volumeId, host, status, version, createdAt, data] = values(stored);
      let changed: number;
      try {
        changed = await sql.execute(
          'update cairn_objects set backend = ?, name = ?, volume_id = ?, host = ?, status = ?, version = ?, created_at = ?, data = ? where kind = ? and id = ? and version = ?',
          [
            backend,
            name,
            volumeId,
            host,
            status,
            version,
            createdAt,
            data,
            record.kind,
            record.id,
            record.version,
          ],
        );
      } catch (err) {
        throw writeError(record, err);
      }
      if (changed === 0) {
        const current = await store.get(record.kind, record.id);
        throw conflict(
          `${record.kind} ${record.id} was changed by someone else (version ${current?.version ?? 'gone'}, expected ${record.version})`,
        );
      }
      return stored;
    },

    async restore(record) {
      try {
        await sql.batch([
          ['delete from cairn_objects where kind = ? and id = ?', [record.kind, record.id]],
          [INSERT, values(record)],
        ]);
      } catch (err) {
        throw writeError(record, err);
      }
    },

    async remove(kind, id) {
      const n = await guard(
        `removing ${kind} ${id}`,
        sql.execute('delete from cairn_objects where kind = ? and id = ?', [kind, id]),
      );
      return n > 0;
    },

    async getKV(key) {
      const rows = await guard(
        'reading a key',
        sql.query<{ value: string }>('select kv_value as value from cairn_kv where kv_key = ?', [key]),
      );
      return rows[0]?.value ?? null;
    },

    async setKV(key, value) {
      await guard(
        `writing key ${key}`,
        sql.batch([
          ['delete from cairn_kv where kv_key = ?', [key]],
          ['insert into cairn_kv (kv_key, kv_value) values (?, ?)', [key, value]],
        ]),
      );
    },

    async deleteKV(key) {
      return (
        (await guard(`deleting key ${key}`, sql.execute('delete from cairn_kv where kv_key = ?', [key]))) > 0
      );
    },

    async listKV(prefix = '') {
      const rows = await guard(
        'listing keys',
        sql.query<{ k: string; v: string }>(
          'select kv_key as k, kv_value as v from cairn_kv order by kv_key',
          [],
        ),
      );
      const out: Record<string, string> = {};
      rows.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
      for (const r of rows) if (r.k.startsWith(prefix)) out[r.k] = r.v;
      return out;
    },

    async close() {
      await sql.close();
    },
  };
  return store;
}
