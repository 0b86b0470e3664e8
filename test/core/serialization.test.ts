import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Cairn, ErrorCode, type StateDump } from '../../src/index.js';
import { byCreation, connectionArb, snapshotArb, uniqueRecords, volumeArb } from '../harness/arbitraries.js';
import { rejectsWith } from '../harness/assert.js';
import { memoryDriver } from '../harness/memory-driver.js';
import { connectionRecord, snapshotRecord, volumeRecord } from '../harness/records.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

let dir: TempDir;
before(async () => {
  dir = await tempDir('cairn-serialization-');
});
after(() => dir.cleanup());

let n = 0;
const STORES = {
  memory: () => 'memory:',
  'sqlite :memory:': () => 'sqlite::memory:',
  'sqlite file': () => `sqlite:${join(dir.path, `state-${++n}.db`)}`,
};
const open = (state: string) => Cairn.open({ state, lockDir: join(dir.path, 'locks') });

/** A dump as `dump()` writes it: records ordered by creation time, then id. */
const dumpArb = fc
  .record({
    volumes: uniqueRecords(volumeArb),
    snapshots: uniqueRecords(snapshotArb),
    connections: uniqueRecords(connectionArb),
    keyValues: fc.dictionary(
      fc.string({ unit: 'grapheme', minLength: 1 }).filter((k) => k !== '__proto__'),
      fc.string({ unit: 'grapheme' }),
      { maxKeys: 5, noNullPrototype: true },
    ),
  })
  .map(
    (d): StateDump => ({
      format: 'cairn-state',
      version: 1,
      backends: {},
      volumes: byCreation(d.volumes),
      snapshots: byCreation(d.snapshots),
      connections: byCreation(d.connections),
      keyValues: d.keyValues,
    }),
  );

/** Every secret field name the brief lists, and a few spellings drivers use. */
const SECRET_KEYS = [
  'password',
  'chapPassword',
  'secret',
  'token',
  'keyring',
  'key',
  'auth_password',
  'clientSecret',
];

/** Paths of object keys in `value` that name secrets. */
function secretPaths(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => secretPaths(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [
    ...(SECRET_KEYS.includes(k) ? [`${path}.${k}`] : []),
    ...secretPaths(v, `${path}.${k}`),
  ]);
}

describe('dump and load', () => {
  for (const [label, state] of Object.entries(STORES)) {
    it(`round-trips generated state through load({ save: true }) and dump() (${label})`, async () => {
      await fc.assert(
        fc.asyncProperty(dumpArb, async (original) => {
          const first = await open(state());
          const second = await open(state());
          try {
            const loaded = await first.load(JSON.parse(JSON.stringify(original)), { save: true });
            assert.equal(loaded.volumes.length, original.volumes.length);
            const dumped = await first.dump({ includeSecrets: true });
            assert.deepEqual(dumped, original);
            await second.load(JSON.stringify(dumped), { save: true });
            assert.deepEqual(await second.dump({ includeSecrets: true }), original);
          } finally {
            await first.close();
            await second.close();
          }
        }),
        { numRuns: label === 'sqlite file' ? 15 : 40 },
      );
    });
  }

  it('round-trips every object through toJSON()', async () => {
    await fc.assert(
      fc.asyncProperty(dumpArb, async (original) => {
        const cairn = await open('memory:');
        try {
          const { volumes, snapshots, connections } = await cairn.load(original);
          const viaJson = (x: unknown) => JSON.parse(JSON.stringify(x));
          assert.deepEqual(volumes.map(viaJson), original.volumes);
          assert.deepEqual(snapshots.map(viaJson), original.snapshots);
          assert.deepEqual(
            connections.map((c) => viaJson(c.toJSON({ includeSecrets: true }))),
            original.connections,
          );
          const again = await cairn.load({ ...original, volumes: volumes.map(viaJson) });
          assert.deepEqual(
            again.volumes.map((v) => v.record),
            original.volumes,
          );
          assert.deepEqual(await cairn.volumes(), [], 'load without save writes nothing');
        } finally {
          await cairn.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('secrets', () => {
  it('leaves secrets in connection info out of dump() and JSON.stringify unless asked', async () => {
    const secretArb = fc.record({
      field: fc.constantFrom(...SECRET_KEYS),
      value: fc.uuid().map((u) => `SECRET-${u}`),
      depth: fc.nat({ max: 3 }),
      inArray: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(secretArb, { minLength: 1, maxLength: 4 }), async (secrets) => {
        const data: Record<string, unknown> = { target: 'iqn.2024-01.test:v', lun: 1 };
        for (const [i, s] of secrets.entries()) {
          let leaf: Record<string, unknown> = { [s.field]: s.value, keep: `visible-${i}` };
          for (let d = 0; d < s.depth; d++) leaf = { [`level${d}`]: s.inArray ? [leaf] : leaf };
          data[`part${i}`] = leaf;
        }
        const record = connectionRecord({ info: { protocol: 'iscsi', data } });
        const cairn = await open('memory:');
        try {
          const [conn] = (await cairn.load(dumpOf({ connections: [record] }), { save: true })).connections;
          const plain = await cairn.dump();
          const text = JSON.stringify(plain) + JSON.stringify(conn);
          for (const s of secrets) assert.ok(!text.includes(s.value), `secret ${s.field} leaked`);
          assert.deepEqual(secretPaths(plain), []);
          assert.deepEqual(secretPaths(JSON.parse(JSON.stringify(conn))), []);
          for (const [i] of secrets.entries()) assert.ok(text.includes(`visible-${i}`), 'other fields stay');
          assert.deepEqual((await cairn.dump({ includeSecrets: true })).connections, [record]);
          assert.deepEqual(conn!.toJSON({ includeSecrets: true }), record);
        } finally {
          await cairn.close();
        }
      }),
      { numRuns: 50 },
    );
  });

  it('leaves secrets in backend configuration and in exports out by default', async () => {
    const cairn = await open('memory:');
    try {
      const config = {
        driver: memoryDriver,
        pool: 'p1',
        password: 'SECRET-top',
        keyring: 'SECRET-ring',
        auth: { user: 'admin', chapPassword: 'SECRET-chap', token: 'SECRET-token', key: 'SECRET-key' },
      };
      const backend = await cairn.addBackend('mem', config);
      const vol = await backend.createVolume({ size: '1MiB' });
      const conn = await vol.connect({ host: 'node-1' });
      const plain = await cairn.dump();
      const text = JSON.stringify(plain) + JSON.stringify(backend) + JSON.stringify(conn);
      assert.ok(!text.includes('SECRET-'), `a secret leaked: ${text}`);
      assert.deepEqual(plain.backends.mem, { driver: 'test-memory', pool: 'p1', auth: { user: 'admin' } });
      const full = await cairn.dump({ includeSecrets: true });
      assert.deepEqual(full.backends.mem, { ...config, driver: 'test-memory' });
      assert.equal(
        (full.connections[0]!.info.data.auth as { chapPassword: string }).chapPassword,
        `chap-${vol.id}`,
      );
      assert.equal((conn.info.data.auth as { chapPassword: string }).chapPassword, `chap-${vol.id}`);
      const err = await rejectsWith(
        cairn.addBackend('bad', { ...config, password: 'SECRET-in-error', unknownField: 1 }),
        ErrorCode.InvalidArgument,
        'unknownField',
      );
      assert.ok(!JSON.stringify(err.toJSON()).includes('SECRET-'), 'errors do not show secrets');
    } finally {
      await cairn.close();
    }
  });
});

/** A valid dump with the given records. */
function dumpOf(parts: Partial<Pick<StateDump, 'volumes' | 'snapshots' | 'connections'>>): StateDump {
  return {
    format: 'cairn-state',
    version: 1,
    backends: {},
    volumes: parts.volumes ?? [],
    snapshots: parts.snapshots ?? [],
    connections: parts.connections ?? [],
    keyValues: {},
  };
}

describe('malformed dumps', () => {
  const good = () =>
    dumpOf({
      volumes: [volumeRecord({ name: 'v0' }), volumeRecord({ name: 'v1' })],
      snapshots: [snapshotRecord()],
      connections: [connectionRecord()],
    });
  const cases: Array<[string, (d: Record<string, unknown> & StateDump) => unknown, string]> = [
    ['a negative size', (d) => Object.assign(d.volumes[1]!, { size: -5 }), 'volumes.1.size'],
    ['a fractional size', (d) => Object.assign(d.snapshots[0]!, { size: 1.5 }), 'snapshots.0.size'],
    [
      'an unknown status',
      (d) => Object.assign(d.snapshots[0]!, { status: 'exploded' }),
      'snapshots.0.status',
    ],
    ['an unknown record field', (d) => Object.assign(d.volumes[0]!, { colour: 'red' }), 'colour'],
    [
      'a missing field',
      (d) => delete (d.connections[0] as Partial<(typeof d.connections)[0]>).host,
      'connections.0.host',
    ],
    [
      'an empty protocol',
      (d) => Object.assign(d.connections[0]!.info, { protocol: '' }),
      'connections.0.info.protocol',
    ],
    ['a non-string value', (d) => Object.assign(d.keyValues, { k: 5 }), 'keyValues.k'],
    ['another format', (d) => Object.assign(d, { format: 'other' }), 'format'],
    ['a newer version', (d) => Object.assign(d, { version: 2 }), 'version'],
    ['no snapshots list', (d) => delete (d as Partial<StateDump>).snapshots, 'snapshots'],
    [
      'a volume of the wrong kind',
      (d) => Object.assign(d.volumes[0]!, { kind: 'snapshot' }),
      'volumes.0.kind',
    ],
  ];

  for (const [what, spoil, field] of cases) {
    it(`refuses a dump with ${what}, naming ${field}, and writes nothing`, async () => {
      const cairn = await open('sqlite::memory:');
      try {
        await cairn.load(dumpOf({ volumes: [volumeRecord({ name: 'existing' })] }), { save: true });
        const before = await cairn.dump({ includeSecrets: true });
        const dump = good() as Record<string, unknown> & StateDump;
        spoil(dump);
        await rejectsWith(cairn.load(dump, { save: true }), ErrorCode.InvalidArgument, field);
        await rejectsWith(cairn.load(JSON.stringify(dump), { save: true }), ErrorCode.InvalidArgument, field);
        assert.deepEqual(await cairn.dump({ includeSecrets: true }), before);
      } finally {
        await cairn.close();
      }
    });
  }

  it('refuses text that is not JSON, or not an object', async () => {
    const cairn = await open('memory:');
    try {
      await rejectsWith(cairn.load('{"format": "cairn-state",'), ErrorCode.InvalidArgument, 'JSON');
      await rejectsWith(cairn.load('[]'), ErrorCode.InvalidArgument);
      await rejectsWith(cairn.load(null), ErrorCode.InvalidArgument);
      assert.deepEqual((await cairn.dump()).volumes, []);
    } finally {
      await cairn.close();
    }
  });

  it('refuses a dump whose records clash with each other, and writes nothing', async () => {
    for (const state of ['memory:', 'sqlite::memory:']) {
      const cairn = await open(state);
      try {
        const twin = volumeRecord({ name: 'twin' });
        const sameName = dumpOf({ volumes: [volumeRecord(), twin, volumeRecord({ name: 'twin' })] });
        await rejectsWith(
          cairn.load(sameName, { save: true }),
          ErrorCode.InvalidArgument,
          'volumes.2.name',
          'twin',
        );
        const sameId = dumpOf({ volumes: [twin, { ...twin, name: 'other' }] });
        await rejectsWith(
          cairn.load(sameId, { save: true }),
          ErrorCode.InvalidArgument,
          'volumes.1.id',
          twin.id,
        );
        const sameSnapName = dumpOf({
          snapshots: [snapshotRecord({ name: 's' }), snapshotRecord({ name: 's' })],
        });
        await rejectsWith(
          cairn.load(sameSnapName, { save: true }),
          ErrorCode.InvalidArgument,
          'snapshots.1.name',
        );
        assert.deepEqual(await cairn.dump(), dumpOf({}), `nothing was written (${state})`);
        // The same name on another backend, or of another kind, is no clash.
        const fine = dumpOf({
          volumes: [volumeRecord({ name: 'n', backend: 'a' }), volumeRecord({ name: 'n', backend: 'b' })],
          snapshots: [snapshotRecord({ name: 'n', backend: 'a' })],
        });
        await cairn.load(fine, { save: true });
        assert.equal((await cairn.dump()).volumes.length, 2);
      } finally {
        await cairn.close();
      }
    }
  });
});
