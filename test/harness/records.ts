import { randomUUID } from 'node:crypto';
import type { ConnectionRecord, SnapshotRecord, VolumeRecord } from '../../src/index.js';

// Plain records for store and serialization tests, valid by the record schemas.

const base = (over: { id?: string; backend?: string; createdAt?: string }) => {
  const at = over.createdAt ?? new Date().toISOString();
  return {
    id: over.id ?? randomUUID(),
    backend: over.backend ?? 'b1',
    name: null,
    description: null,
    metadata: {},
    lastError: null,
    version: 0,
    createdAt: at,
    updatedAt: at,
    driverData: {},
  };
};

export function volumeRecord(over: Partial<VolumeRecord> = {}): VolumeRecord {
  return {
    kind: 'volume',
    ...base(over),
    status: 'available',
    attachStatus: 'detached',
    size: 1024 * 1024,
    sourceVolumeId: null,
    sourceSnapshotId: null,
    extraSpecs: {},
    multiattach: false,
    ...over,
  };
}

export function snapshotRecord(over: Partial<SnapshotRecord> = {}): SnapshotRecord {
  return {
    kind: 'snapshot',
    ...base(over),
    status: 'available',
    volumeId: randomUUID(),
    size: 1024 * 1024,
    ...over,
  };
}

export function connectionRecord(over: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return {
    kind: 'connection',
    ...base(over),
    status: 'connected',
    volumeId: randomUUID(),
    host: 'host-a',
    mode: 'rw',
    connector: { host: 'host-a', ips: ['192.0.2.1'] },
    info: { protocol: 'local', data: { path: '/srv/v' } },
    path: null,
    ...over,
  };
}
