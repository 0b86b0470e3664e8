import type { AnyRecord, RecordKind, RecordOf } from '../core/records.js';

/** Filters of {@link StateStore.list}; every given field must match exactly. */
export interface ListFilter {
  id?: string;
  backend?: string;
  name?: string;
  volumeId?: string;
  host?: string;
  status?: string;
}

/**
 * Where Cairn keeps its objects. Implementations: `memory`, `sqlite` (the embedded default);
 * third-party stores implement this interface and are loaded by package name or factory.
 *
 * Contract (checked by `test/conformance/state-store.ts`):
 * - records come back exactly as written (deep-equal), ordered by `createdAt`, then `id`;
 * - `put` is optimistic: it succeeds only when the stored version equals `record.version`
 *   (or the record is new and `record.version` is 0), stores `version + 1` and returns it;
 *   otherwise it throws CONFLICT;
 * - a name is unique per kind and backend: a second record with it throws ALREADY_EXISTS;
 * - `restore` writes a record as it is (used by `load`), replacing any record with its id.
 */
export interface StateStore {
  /** Short name of the implementation, e.g. `sqlite`. */
  readonly kind: string;
  /** Where the data lives, safe to print (no password). */
  readonly location: string;
  get<K extends RecordKind>(kind: K, id: string): Promise<RecordOf<K> | null>;
  list<K extends RecordKind>(kind: K, filter?: ListFilter): Promise<RecordOf<K>[]>;
  put<R extends AnyRecord>(record: R): Promise<R>;
  restore(record: AnyRecord): Promise<void>;
  /** Removes a record; returns false when there was none. */
  remove(kind: RecordKind, id: string): Promise<boolean>;
  getKV(key: string): Promise<string | null>;
  setKV(key: string, value: string): Promise<void>;
  deleteKV(key: string): Promise<boolean>;
  listKV(prefix?: string): Promise<Record<string, string>>;
  /**
   * Optional: a lock shared by every process and host using this store (PostgreSQL advisory
   * locks, MySQL `GET_LOCK`), released by the database when its holder dies. Waits until
   * `deadline` (epoch ms), then throws BUSY. When a store offers it, Cairn uses it instead of
   * lock files, which hold on one host only.
   */
  lock?(key: string, deadline: number): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** What a store factory receives. */
export interface StateStoreContext {
  /** A lock that holds across processes on this host, e.g. to run migrations once. */
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/** A factory that third-party packages export (as `default` or `createStateStore`). */
export type StateStoreFactory = (
  options: unknown,
  ctx: StateStoreContext,
) => Promise<StateStore> | StateStore;
