import type { AnyRecord, RecordKind, RecordOf } from '../core/records.js';
import { alreadyExists, conflict } from '../util/errors.js';
import type { ListFilter, StateStore } from './spi.js';
import { byCreation, matches } from './util.js';

/**
 * Keeps everything in this process's memory; the program persists it with `cairn.dump()` and
 * restores it with `cairn.load()`, as cinderlib's `memory` persistence.
 */
export function createMemoryStore(): StateStore {
  const objects = new Map<string, AnyRecord>();
  // Name → id per kind and backend, so a write checks its name without scanning every record.
  const names = new Map<string, string>();
  const kv = new Map<string, string>();
  const keyOf = (kind: RecordKind, id: string) => `${kind}/${id}`;
  const nameOf = (r: AnyRecord) => (r.name === null ? null : JSON.stringify([r.kind, r.backend, r.name]));

  /** Stores `record`, keeping the name index true; throws ALREADY_EXISTS on a taken name. */
  function write(record: AnyRecord): void {
    const name = nameOf(record);
    const holder = name === null ? undefined : names.get(name);
    if (holder !== undefined && holder !== record.id) {
      throw alreadyExists(
        `a ${record.kind} named "${record.name}" already exists on backend ${record.backend} (${holder})`,
      );
    }
    const previous = objects.get(keyOf(record.kind, record.id));
    const previousName = previous ? nameOf(previous) : null;
    if (previousName !== null && previousName !== name) names.delete(previousName);
    if (name !== null) names.set(name, record.id);
    objects.set(keyOf(record.kind, record.id), record);
  }

  return {
    kind: 'memory',
    location: 'memory',
    async get<K extends RecordKind>(kind: K, id: string) {
      const r = objects.get(keyOf(kind, id));
      return r ? (structuredClone(r) as RecordOf<K>) : null;
    },
    async list<K extends RecordKind>(kind: K, filter: ListFilter = {}) {
      const out: RecordOf<K>[] = [];
      for (const r of objects.values())
        if (r.kind === kind && matches(r, filter)) out.push(structuredClone(r) as RecordOf<K>);
      return out.sort(byCreation);
    },
    async put<R extends AnyRecord>(record: R) {
      const current = objects.get(keyOf(record.kind, record.id));
      if ((current?.version ?? 0) !== record.version) {
        throw conflict(
          `${record.kind} ${record.id} was changed by someone else (version ${current?.version ?? 'none'}, expected ${record.version})`,
        );
      }
      const stored = { ...structuredClone(record), version: record.version + 1 };
      write(stored);
      return structuredClone(stored);
    },
    async restore(record) {
      write(structuredClone(record));
    },
    async remove(kind, id) {
      const r = objects.get(keyOf(kind, id));
      if (!r) return false;
      const name = nameOf(r);
      if (name !== null) names.delete(name);
      return objects.delete(keyOf(kind, id));
    },
    async getKV(key) {
      return kv.get(key) ?? null;
    },
    async setKV(key, value) {
      kv.set(key, value);
    },
    async deleteKV(key) {
      return kv.delete(key);
    },
    async listKV(prefix = '') {
      const out: Record<string, string> = {};
      for (const [k, v] of [...kv.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        if (k.startsWith(prefix)) out[k] = v;
      return out;
    },
    async close() {},
  };
}
