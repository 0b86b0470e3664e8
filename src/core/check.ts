import type { Backend } from './backend.js';
import { type Engine, failure, lockKey, save } from './engine.js';
import type { SnapshotRecord, VolumeRecord } from './records.js';
import { type RecoveryAction, recoverBackend, TRANSITIONAL } from './recovery.js';

/** How one backend's real inventory compares with the state store. */
export interface BackendCheck {
  backend: string;
  /** On the backend, unknown to the store. Never removed by Cairn: it may be someone's data. */
  orphans: Array<{ kind: 'volume' | 'snapshot'; id: string; size: number }>;
  /** In the store, gone from the backend. */
  dangling: Array<{ kind: 'volume' | 'snapshot'; id: string; name: string | null; status: string }>;
  /** In the store with a different size than on the backend. */
  sizeMismatches: Array<{ kind: 'volume' | 'snapshot'; id: string; stored: number; actual: number }>;
  /** Objects that interrupted operations left behind, and what recovery did (with repair). */
  recovered: RecoveryAction[];
  /** What `repair` changed in the store. */
  repaired: Array<{ kind: 'volume' | 'snapshot'; id: string; action: string }>;
}

/**
 * Compares the store with each backend's real inventory. With `repair`, interrupted operations
 * are recovered and dangling records are fixed: removed when they were being deleted anyway,
 * marked `error` otherwise. Orphans are only reported.
 */
export async function checkBackend(engine: Engine, backend: Backend, repair: boolean): Promise<BackendCheck> {
  // What recovery did when the backend was added in this context counts too.
  const recovered = [...backend.recovered, ...(repair ? await recoverBackend(engine, backend) : [])];
  const inventory = await backend.driver.inventory();
  const report: BackendCheck = {
    backend: backend.name,
    orphans: [],
    dangling: [],
    sizeMismatches: [],
    recovered,
    repaired: [],
  };
  for (const kind of ['volume', 'snapshot'] as const) {
    const found = kind === 'volume' ? inventory.volumes : inventory.snapshots;
    const records: Array<VolumeRecord | SnapshotRecord> = await engine.store.list(kind, {
      backend: backend.name,
    });
    const known = new Set(records.map((r) => r.id));
    for (const [id, size] of found) if (!known.has(id)) report.orphans.push({ kind, id, size });
    for (const r of records) {
      // An object being created may not exist on the backend yet: not dangling.
      if (r.status === 'creating') continue;
      const actual = found.get(r.id);
      if (actual === undefined) {
        report.dangling.push({ kind, id: r.id, name: r.name, status: r.status });
        if (repair) {
          const action = await engine.locks.withLocks([lockKey(kind, r.id)], async () => {
            const now = await engine.store.get(kind, r.id);
            return now ? repairDangling(engine, now) : 'gone meanwhile';
          });
          report.repaired.push({ kind, id: r.id, action });
        }
      } else if (actual !== r.size && !TRANSITIONAL[kind].includes(r.status)) {
        report.sizeMismatches.push({ kind, id: r.id, stored: r.size, actual });
      }
    }
  }
  return report;
}

async function repairDangling(engine: Engine, r: VolumeRecord | SnapshotRecord): Promise<string> {
  if (r.status === 'deleting' || r.status === 'error_deleting') {
    await engine.store.remove(r.kind, r.id);
    return 'removed the record (it was being deleted and is gone from the backend)';
  }
  if (r.status === 'error') return 'left as error';
  await save(
    engine,
    r as VolumeRecord,
    {
      status: 'error',
      lastError: failure('check', new Error(`${r.kind} is missing on backend ${r.backend}`)),
    } as Partial<VolumeRecord>,
  );
  return 'marked error: missing on the backend';
}
