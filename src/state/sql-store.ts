import type { Kysely } from 'kysely';
import { type AnyRecord, type RecordKind, type RecordOf, recordSchemas } from '../core/records.js';
import { alreadyExists, conflict, stateStoreFailure } from '../util/errors.js';
import type { ListFilter, StateStore } from './spi.js';

interface ObjectRow {
  kind: string;
  id: string;
  backend: string;
  name: string | null;
  volume_id: string | null;
  host: string | null;
  status: string;
  version: number | string;
  created_at: string;
  data: string;
}

interface Schema {
  cairn_objects: ObjectRow;
  cairn_kv: { key: string; value: string };
}

/** Tells a unique-constraint violation from other errors; differs per database. */
export type UniqueViolationTest = (err: unknown) => boolean;

/**
 * A {@link StateStore} over any Kysely database that has the Cairn schema. Each SQL store
 * (SQLite now) supplies the Kysely instance and how its driver reports unique violations.
 */
export function createSqlStore(opts: {
  kind: string;
  location: string;
  db: Kysely<unknown>;
  isUniqueViolation: UniqueViolationTest;
  onClose?: () => Promise<void>;
}): StateStore {
  const db = opts.db as unknown as Kysely<Schema>;
  const fail = (what: string, err: unknown) =>
    stateStoreFailure(`state store ${opts.location}: ${what} failed: ${(err as Error).message}`, {
      cause: err,
    });

  const toRow = (r: AnyRecord): ObjectRow => ({
    kind: r.kind,
    id: r.id,
    backend: r.backend,
    name: r.name,
    volume_id: 'volumeId' in r ? r.volumeId : null,
    host: r.kind === 'connection' ? r.host : null,
    status: r.status,
    version: r.version,
    created_at: r.createdAt,
    data: JSON.stringify(r),
  });
  const fromRow = <K extends RecordKind>(row: ObjectRow): RecordOf<K> => {
    const parsed = recordSchemas[row.kind as RecordKind].safeParse(JSON.parse(row.data));
    if (!parsed.success)
      throw stateStoreFailure(
        `state store ${opts.location}: ${row.kind} ${row.id} is corrupt: ${parsed.error.message}`,
      );
    return parsed.data as RecordOf<K>;
  };
  const clash = (r: AnyRecord, err: unknown) =>
    opts.isUniqueViolation(err)
      ? alreadyExists(`a ${r.kind} named "${r.name}" already exists on backend ${r.backend}`)
      : fail(`writing ${r.kind} ${r.id}`, err);

  return {
    kind: opts.kind,
    location: opts.location,
    async get<K extends RecordKind>(kind: K, id: string) {
      const row = await db
        .selectFrom('cairn_objects')
        .selectAll()
        .where('kind', '=', kind)
        .where('id', '=', id)
        .executeTakeFirst()
        .catch((e) => {
          throw fail(`reading ${kind} ${id}`, e);
        });
      return row ? fromRow<K>(row) : null;
    },
    async list<K extends RecordKind>(kind: K, filter: ListFilter = {}) {
      let q = db.selectFrom('cairn_objects').selectAll().where('kind', '=', kind);
      if (filter.id !== undefined) q = q.where('id', '=', filter.id);
      if (filter.backend !== undefined) q = q.where('backend', '=', filter.backend);
      if (filter.name !== undefined) q = q.where('name', '=', filter.name);
      if (filter.volumeId !== undefined) q = q.where('volume_id', '=', filter.volumeId);
      if (filter.host !== undefined) q = q.where('host', '=', filter.host);
      if (filter.status !== undefined) q = q.where('status', '=', filter.status);
      const rows = await q
        .orderBy('created_at')
        .orderBy('id')
        .execute()
        .catch((e) => {
          throw fail(`listing ${kind}s`, e);
        });
      return rows.map((r) => fromRow<K>(r));
    },
    async put<R extends AnyRecord>(record: R) {
      const stored = { ...record, version: record.version + 1 } as R;
      const row = toRow(stored);
      if (record.version === 0) {
        try {
          await db.insertInto('cairn_objects').values(row).execute();
        } catch (err) {
          const exists = await this.get(record.kind, record.id).catch(() => null);
          if (exists)
            throw conflict(
              `${record.kind} ${record.id} already exists in the state store (version ${exists.version})`,
            );
          throw clash(record, err);
        }
        return stored;
      }
      let updated: bigint;
      try {
        const res = await db
          .updateTable('cairn_objects')
          .set(row)
          .where('kind', '=', record.kind)
          .where('id', '=', record.id)
          .where('version', '=', record.version)
          .executeTakeFirst();
        updated = res.numUpdatedRows;
      } catch (err) {
        throw clash(record, err);
      }
      if (updated === 0n) {
        const current = await this.get(record.kind, record.id);
        throw conflict(
          `${record.kind} ${record.id} was changed by someone else (version ${current?.version ?? 'gone'}, expected ${record.version})`,
        );
      }
      return stored;
    },
    async restore(record) {
      const row = toRow(record);
      try {
        await db.transaction().execute(async (tx) => {
          await tx
            .deleteFrom('cairn_objects')
            .where('kind', '=', record.kind)
            .where('id', '=', record.id)
            .execute();
          await tx.insertInto('cairn_objects').values(row).execute();
        });
      } catch (err) {
        throw clash(record, err);
      }
    },
    async remove(kind, id) {
      const res = await db
        .deleteFrom('cairn_objects')
        .where('kind', '=', kind)
        .where('id', '=', id)
        .executeTakeFirst()
        .catch((e) => {
          throw fail(`removing ${kind} ${id}`, e);
        });
      return res.numDeletedRows > 0n;
    },
    async getKV(key) {
      const row = await db.selectFrom('cairn_kv').select('value').where('key', '=', key).executeTakeFirst();
      return row?.value ?? null;
    },
    async setKV(key, value) {
      await db.transaction().execute(async (tx) => {
        await tx.deleteFrom('cairn_kv').where('key', '=', key).execute();
        await tx.insertInto('cairn_kv').values({ key, value }).execute();
      });
    },
    async deleteKV(key) {
      const res = await db.deleteFrom('cairn_kv').where('key', '=', key).executeTakeFirst();
      return res.numDeletedRows > 0n;
    },
    async listKV(prefix = '') {
      const rows = await db.selectFrom('cairn_kv').selectAll().orderBy('key').execute();
      const out: Record<string, string> = {};
      for (const r of rows) if (r.key.startsWith(prefix)) out[r.key] = r.value;
      return out;
    },
    async close() {
      await db.destroy();
      await opts.onClose?.();
    },
  };
}
