/**
 * Human views of the library's objects, built from their plain records (what `toJSON()`
 * returns), so the human and `--json` outputs show the same data and a connection's secrets
 * are stripped before either sees them.
 */
import type { ConnectionRecord, SnapshotRecord, VolumeRecord } from '../core/records.js';
import type { BackendStats, Capabilities } from '../drivers/spi.js';
import { formatSize } from '../util/size.js';
import { type Column, formatFields, formatMap, formatTable, sizeWithBytes } from './output.js';

export const volumeColumns: Column<VolumeRecord>[] = [
  { header: 'id', value: (v) => v.id },
  { header: 'name', value: (v) => v.name },
  { header: 'size', value: (v) => formatSize(v.size), right: true },
  { header: 'status', value: (v) => v.status },
  { header: 'attach', value: (v) => v.attachStatus },
  { header: 'backend', value: (v) => v.backend },
];

export const snapshotColumns: Column<SnapshotRecord>[] = [
  { header: 'id', value: (s) => s.id },
  { header: 'name', value: (s) => s.name },
  { header: 'volume', value: (s) => s.volumeId },
  { header: 'size', value: (s) => formatSize(s.size), right: true },
  { header: 'status', value: (s) => s.status },
  { header: 'backend', value: (s) => s.backend },
];

const connectionColumns: Column<ConnectionRecord>[] = [
  { header: 'connection', value: (c) => c.id },
  { header: 'host', value: (c) => c.host },
  { header: 'mode', value: (c) => c.mode },
  { header: 'status', value: (c) => c.status },
  { header: 'device', value: (c) => c.path },
];

const lastError = (e: VolumeRecord['lastError']) =>
  e ? `${e.operation} failed at ${e.at}: ${e.message}` : undefined;

/** A volume's fields, and its connections when given. */
export function volumeView(v: VolumeRecord, connections: ConnectionRecord[] = []): string {
  const fields = formatFields([
    ['id', v.id],
    ['name', v.name],
    ['backend', v.backend],
    ['size', sizeWithBytes(v.size)],
    ['status', v.status],
    ['attach status', v.attachStatus],
    ['description', v.description ?? undefined],
    ['metadata', formatMap(v.metadata)],
    ['extra specs', Object.keys(v.extraSpecs).length ? formatMap(v.extraSpecs) : undefined],
    ['multiattach', v.multiattach ? 'yes' : undefined],
    ['source volume', v.sourceVolumeId ?? undefined],
    ['source snapshot', v.sourceSnapshotId ?? undefined],
    ['created', v.createdAt],
    ['last error', lastError(v.lastError)],
  ]);
  return connections.length === 0 ? fields : `${fields}\n\n${formatTable(connectionColumns, connections)}`;
}

export function snapshotView(s: SnapshotRecord): string {
  return formatFields([
    ['id', s.id],
    ['name', s.name],
    ['volume', s.volumeId],
    ['backend', s.backend],
    ['size', sizeWithBytes(s.size)],
    ['status', s.status],
    ['description', s.description ?? undefined],
    ['metadata', formatMap(s.metadata)],
    ['created', s.createdAt],
    ['last error', lastError(s.lastError)],
  ]);
}

/** A connection, with what its connection info holds (the record passed in has no secrets). */
export function connectionView(c: ConnectionRecord): string {
  return formatFields([
    ['connection', c.id],
    ['volume', c.volumeId],
    ['host', c.host],
    ['mode', c.mode],
    ['status', c.status],
    ['device', c.path ?? undefined],
    ['protocol', c.info.protocol],
    ...Object.entries(c.info.data).map(([k, v]) => [`  ${k}`, v] as const),
    ['last error', lastError(c.lastError)],
  ]);
}

/** `thin, snapshots, clone:instant, revert, manage, online-extend, protocols:local` */
export function capabilitiesSummary(c: Capabilities): string {
  const parts = [c.thin ? 'thin' : 'thick'];
  if (c.snapshots) parts.push('snapshots');
  parts.push(`clone:${c.cloneSpeed}`);
  if (c.revertToSnapshot) parts.push('revert');
  if (c.manageExisting) parts.push('manage');
  if (c.multiAttach) parts.push('multi-attach');
  if (c.onlineExtend) parts.push('online-extend');
  parts.push(`protocols:${c.protocols.join('+') || 'none'}`);
  return parts.join(', ');
}

export const statsColumns: Column<BackendStats & { backend: string }>[] = [
  { header: 'backend', value: (s) => s.backend },
  { header: 'total', value: (s) => formatSize(s.totalBytes), right: true },
  { header: 'free', value: (s) => formatSize(s.freeBytes), right: true },
  { header: 'provisioned', value: (s) => formatSize(s.provisionedBytes), right: true },
  {
    header: 'allocated',
    value: (s) => (s.allocatedBytes === null ? null : formatSize(s.allocatedBytes)),
    right: true,
  },
  { header: 'provisioning', value: (s) => (s.thin ? 'thin' : 'thick') },
  { header: 'volumes', value: (s) => s.volumeCount, right: true },
  { header: 'snapshots', value: (s) => s.snapshotCount, right: true },
];
