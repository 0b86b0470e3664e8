import type { AnyRecord } from '../core/records.js';
import type { ListFilter } from './spi.js';

/** Order of every listing: creation time, then id, so pages are stable. */
export function byCreation(a: AnyRecord, b: AnyRecord): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** True when `record` matches every field of `filter`. */
export function matches(record: AnyRecord, filter: ListFilter): boolean {
  if (filter.id !== undefined && record.id !== filter.id) return false;
  if (filter.backend !== undefined && record.backend !== filter.backend) return false;
  if (filter.name !== undefined && record.name !== filter.name) return false;
  if (filter.status !== undefined && record.status !== filter.status) return false;
  if (filter.volumeId !== undefined && (!('volumeId' in record) || record.volumeId !== filter.volumeId))
    return false;
  if (filter.host !== undefined && (record.kind !== 'connection' || record.host !== filter.host))
    return false;
  return true;
}
