import fc from 'fast-check';
import { CONNECTION_STATUSES, SNAPSHOT_STATUSES, VOLUME_STATUSES } from '../../src/core/records.js';
import type { ConnectionRecord, SnapshotRecord, VolumeRecord } from '../../src/index.js';

// fast-check generators of valid records, for property tests of stores and serialization.

const MAX = Number.MAX_SAFE_INTEGER;
/** Any well-formed text (whole graphemes: emoji, combining marks, CJK). */
export const text = (maxLength = 24) => fc.string({ unit: 'grapheme', maxLength });
// "__proto__" is a legal JSON key but not a safe object key to round-trip through JS objects.
const key = text(16).filter((k) => k !== '__proto__');

/** JSON values that survive JSON text exactly (no -0, NaN or Infinity). */
export const json: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -MAX, max: MAX }),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    text(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4, noNullPrototype: true }),
  ),
})).value;
export const jsonObject = fc.dictionary(key, json, { maxKeys: 5, noNullPrototype: true }) as fc.Arbitrary<
  Record<string, unknown>
>;
const stringMap = fc.dictionary(key, text(), { maxKeys: 5, noNullPrototype: true });
// Plain objects, as JSON.parse makes them (deepStrictEqual tells a null prototype apart).
const plain = { noNullPrototype: true } as const;
const iso = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const lastError = fc.option(
  fc.record({ operation: fc.constantFrom('create', 'extend', 'delete'), message: text(60), at: iso }, plain),
  { nil: null },
);
const backend = fc.constantFrom('alpha', 'beta', 'ґамма');

const base = {
  id: fc.uuid(),
  backend,
  name: fc.option(
    text(20).filter((s) => s.length > 0),
    { nil: null },
  ),
  description: fc.option(text(80), { nil: null }),
  metadata: stringMap,
  lastError,
  version: fc.nat(),
  createdAt: iso,
  updatedAt: iso,
  driverData: jsonObject,
};

export const volumeArb: fc.Arbitrary<VolumeRecord> = fc.record(
  {
    kind: fc.constant('volume' as const),
    ...base,
    status: fc.constantFrom(...VOLUME_STATUSES),
    attachStatus: fc.constantFrom('detached', 'attached'),
    size: fc.integer({ min: 1, max: MAX }),
    sourceVolumeId: fc.option(fc.uuid(), { nil: null }),
    sourceSnapshotId: fc.option(fc.uuid(), { nil: null }),
    extraSpecs: stringMap,
    multiattach: fc.boolean(),
  },
  plain,
);

export const snapshotArb: fc.Arbitrary<SnapshotRecord> = fc.record(
  {
    kind: fc.constant('snapshot' as const),
    ...base,
    status: fc.constantFrom(...SNAPSHOT_STATUSES),
    volumeId: fc.uuid(),
    size: fc.integer({ min: 1, max: MAX }),
  },
  plain,
);

export const connectionArb: fc.Arbitrary<ConnectionRecord> = fc.record(
  {
    kind: fc.constant('connection' as const),
    ...base,
    status: fc.constantFrom(...CONNECTION_STATUSES),
    volumeId: fc.uuid(),
    host: text(20).filter((s) => s.length > 0),
    mode: fc.constantFrom('rw', 'ro'),
    connector: fc.record(
      {
        host: fc.constantFrom('node-1', 'node-2'),
        ips: fc.array(fc.ipV4(), { maxLength: 3 }),
        initiator: fc.string(),
      },
      { requiredKeys: ['host'], noNullPrototype: true },
    ),
    info: fc.record(
      { protocol: fc.constantFrom('local', 'iscsi', 'rbd', 'nvmeof'), data: jsonObject },
      plain,
    ),
    path: fc.option(fc.constantFrom('/dev/loop3', '/dev/sdb', '/dev/rbd0'), { nil: null }),
  },
  plain,
);

/** Records of one kind with unique ids and, per backend, unique names, as a store holds them. */
export function uniqueRecords<R extends { id: string; backend: string; name: string | null }>(
  arb: fc.Arbitrary<R>,
  maxLength = 6,
): fc.Arbitrary<R[]> {
  return fc.uniqueArray(arb, { selector: (r) => r.id, maxLength }).map((rs) => {
    const seen = new Set<string>();
    return rs.filter((r) => {
      if (r.name === null) return true;
      const k = `${r.backend}\u0000${r.name}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  });
}

/** Orders records as stores list them: by creation time, then id. */
export function byCreation<R extends { createdAt: string; id: string }>(rs: R[]): R[] {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...rs].sort((a, b) => cmp(a.createdAt, b.createdAt) || cmp(a.id, b.id));
}
