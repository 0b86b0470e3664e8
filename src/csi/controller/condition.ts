/**
 * Volume condition (VOLUME_CONDITION): a volume is abnormal when its record says it failed
 * (`error`, `error_deleting`) or when its backend no longer has it. What a backend has comes
 * from the driver's inventory, which lists the whole backend; it is read at most once per
 * backend every few seconds and shared by concurrent calls, so ListVolumes and the CO's
 * periodic ControllerGetVolume calls stay cheap.
 */
import type { Backend } from '../../core/backend.js';
import type { VolumeRecord } from '../../core/records.js';
import { errorMessage } from '../../util/errors.js';
import type { VolumeCondition } from '../proto.js';

export const INVENTORY_TTL_MS = 5_000;

export class InventoryCache {
  private readonly entries = new Map<string, { at: number; ids: Promise<Set<string>> }>();

  constructor(private readonly ttlMs = INVENTORY_TTL_MS) {}

  /**
   * Ids of the volumes the backend really holds, from a listing at most a few seconds old and
   * started no earlier than `notBefore` (epoch ms), so an object written since is in it.
   */
  volumeIds(backend: Backend, notBefore = 0): Promise<Set<string>> {
    const now = Date.now();
    const hit = this.entries.get(backend.name);
    if (hit && now - hit.at < this.ttlMs && hit.at >= notBefore) return hit.ids;
    const ids = backend.driver.inventory().then((inv) => new Set(inv.volumes.keys()));
    this.entries.set(backend.name, { at: now, ids });
    ids.catch(() => this.entries.delete(backend.name));
    return ids;
  }

  /** Forget what is known of a backend (after this process created or deleted a volume there). */
  invalidate(backendName: string): void {
    this.entries.delete(backendName);
  }
}

/** The condition of a volume: from its record, then from its backend's inventory. */
export async function conditionOf(
  rec: VolumeRecord,
  backend: Backend | undefined,
  cache: InventoryCache,
): Promise<VolumeCondition> {
  if (rec.status === 'error' || rec.status === 'error_deleting') {
    const why = rec.lastError
      ? `${rec.lastError.operation} failed: ${rec.lastError.message}`
      : 'no reason recorded';
    return { abnormal: true, message: `volume is in state ${rec.status} (${why})` };
  }
  if (!backend)
    return { abnormal: true, message: `backend "${rec.backend}" is not configured in this plugin` };
  // A volume still being made may not be on the backend yet.
  if (rec.status === 'creating') return { abnormal: false, message: 'being created' };
  if (rec.status === 'deleting') return { abnormal: false, message: 'being deleted' };
  let ids: Set<string>;
  try {
    // A listing older than the record's last write may predate the volume: not proof of loss.
    ids = await cache.volumeIds(backend, Date.parse(rec.updatedAt));
  } catch (err) {
    return { abnormal: true, message: `cannot list backend "${backend.name}": ${errorMessage(err)}` };
  }
  if (!ids.has(rec.id))
    return { abnormal: true, message: `volume ${rec.id} is missing on backend "${backend.name}"` };
  return { abnormal: false, message: 'volume is available on its backend' };
}
