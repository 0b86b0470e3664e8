/**
 * The state-store conformance suite: the contract of `StateStore` (src/state/spi.ts), run against
 * every implementation. `open` returns a new, empty store for each case.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { AnyRecord } from '../../src/core/records.js';
import { ErrorCode, type StateStore } from '../../src/index.js';
import { byCreation } from '../../src/state/util.js';
import { rejectsWith } from '../harness/assert.js';
import { connectionRecord, snapshotRecord, volumeRecord } from '../harness/records.js';

export function runStateStoreConformance(label: string, open: () => Promise<StateStore>): void {
  describe(`state store conformance: ${label}`, () => {
    const opened: StateStore[] = [];
    const fresh = async () => {
      const store = await open();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    crud(fresh);
    listing(fresh);
    concurrency(fresh);
    values(fresh);
    keyValues(fresh);
    exactness(fresh);
    transactions(fresh);
    racing(fresh);
  });
}

type Open = () => Promise<StateStore>;

/** Stores a new record and returns what the store returned. */
const add = <R extends AnyRecord>(store: StateStore, r: R) => store.put(r);

function crud(fresh: Open) {
  const samples = {
    volume: () => volumeRecord({ name: 'v', metadata: { a: 'b' }, driverData: { nested: { x: [1, 'y'] } } }),
    snapshot: () => snapshotRecord({ name: 's', description: 'desc' }),
    connection: () =>
      connectionRecord({ info: { protocol: 'iscsi', data: { auth: { password: 'p' } } }, path: '/dev/x' }),
  };
  for (const [kind, make] of Object.entries(samples)) {
    it(`creates, reads, updates and removes a ${kind}`, async () => {
      const store = await fresh();
      const record = make();
      const stored = await add(store, record);
      assert.deepEqual(stored, { ...record, version: 1 }, 'put returns the record with version + 1');
      assert.deepEqual(await store.get(record.kind, record.id), stored);
      assert.deepEqual(await store.list(record.kind), [stored]);

      const changed = await store.put({ ...stored, description: 'changed', status: 'error' } as AnyRecord);
      assert.equal(changed.version, 2);
      assert.deepEqual(await store.get(record.kind, record.id), changed);

      assert.equal(await store.remove(record.kind, record.id), true);
      assert.equal(await store.get(record.kind, record.id), null);
      assert.deepEqual(await store.list(record.kind), []);
      assert.equal(await store.remove(record.kind, record.id), false, 'removing twice answers false');
    });
  }

  it('keeps kinds apart: the same id as a volume and a snapshot', async () => {
    const store = await fresh();
    const v = await add(store, volumeRecord({ id: 'same-id' }));
    const s = await add(store, snapshotRecord({ id: 'same-id' }));
    assert.deepEqual(await store.get('volume', 'same-id'), v);
    assert.deepEqual(await store.get('snapshot', 'same-id'), s);
    assert.equal(await store.get('connection', 'same-id'), null);
    assert.equal(await store.remove('volume', 'same-id'), true);
    assert.deepEqual(await store.get('snapshot', 'same-id'), s);
  });

  it('hands out copies: changing a returned record changes nothing stored', async () => {
    const store = await fresh();
    const r = volumeRecord({ metadata: { k: 'v' }, driverData: { deep: { list: [1] } } });
    const stored = await add(store, r);
    stored.metadata.k = 'mutated';
    (stored.driverData.deep as { list: number[] }).list.push(2);
    const got = (await store.get('volume', r.id))!;
    assert.deepEqual(got.metadata, { k: 'v' });
    got.metadata.k = 'again';
    (await store.list('volume'))[0]!.metadata.k = 'and again';
    assert.deepEqual((await store.get('volume', r.id))!.metadata, { k: 'v' });
    assert.deepEqual((await store.get('volume', r.id))!.driverData, { deep: { list: [1] } });
    r.metadata.k = 'caller changed its own object';
    assert.deepEqual((await store.get('volume', r.id))!.metadata, { k: 'v' });
  });

  it('restores records as they are, replacing the one with the same id', async () => {
    const store = await fresh();
    const stored = await add(store, volumeRecord({ name: 'old' }));
    const restored = volumeRecord({ id: stored.id, name: 'new', version: 7, status: 'error' });
    await store.restore(restored);
    assert.deepEqual(await store.get('volume', stored.id), restored, 'version and fields kept as given');
    assert.equal((await store.list('volume')).length, 1);
    const next = await store.put(restored);
    assert.equal(next.version, 8, 'puts continue from the restored version');
    // A restored record with version 0 is updated like any other: the stored version matches.
    const zero = volumeRecord({ version: 0 });
    await store.restore(zero);
    assert.deepEqual(await store.get('volume', zero.id), zero);
    assert.equal((await store.put({ ...zero, description: 'updated' })).version, 1);
    assert.equal((await store.get('volume', zero.id))!.description, 'updated');
    await rejectsWith(store.restore(volumeRecord({ name: 'new' })), ErrorCode.AlreadyExists);
  });
}

function listing(fresh: Open) {
  it('filters by backend, name, volumeId, host, status and id', async () => {
    const store = await fresh();
    const v1 = await add(store, volumeRecord({ backend: 'b1', name: 'n1', status: 'available' }));
    const v2 = await add(store, volumeRecord({ backend: 'b2', name: 'n1', status: 'in-use' }));
    const v3 = await add(store, volumeRecord({ backend: 'b1', name: null, status: 'in-use' }));
    const s1 = await add(store, snapshotRecord({ volumeId: v1.id }));
    const s2 = await add(store, snapshotRecord({ volumeId: v2.id, status: 'error' }));
    const c1 = await add(store, connectionRecord({ volumeId: v1.id, host: 'h1' }));
    const c2 = await add(store, connectionRecord({ volumeId: v1.id, host: 'h2', status: 'attached' }));
    const ids = (rs: AnyRecord[]) => rs.map((r) => r.id).sort();
    const sorted = (...rs: AnyRecord[]) => ids(rs);

    assert.deepEqual(ids(await store.list('volume', { backend: 'b1' })), sorted(v1, v3));
    assert.deepEqual(ids(await store.list('volume', { name: 'n1' })), sorted(v1, v2));
    assert.deepEqual(ids(await store.list('volume', { name: 'n1', backend: 'b2' })), sorted(v2));
    assert.deepEqual(ids(await store.list('volume', { status: 'in-use' })), sorted(v2, v3));
    assert.deepEqual(ids(await store.list('volume', { status: 'in-use', backend: 'b1' })), sorted(v3));
    assert.deepEqual(ids(await store.list('volume', { id: v2.id })), sorted(v2));
    assert.deepEqual(ids(await store.list('volume', { name: 'none' })), []);
    assert.deepEqual(ids(await store.list('volume', { volumeId: v1.id })), [], 'volumes have no volumeId');
    assert.deepEqual(ids(await store.list('snapshot', { volumeId: v1.id })), sorted(s1));
    assert.deepEqual(ids(await store.list('snapshot', { status: 'error' })), sorted(s2));
    assert.deepEqual(ids(await store.list('connection', { volumeId: v1.id })), sorted(c1, c2));
    assert.deepEqual(ids(await store.list('connection', { host: 'h2' })), sorted(c2));
    assert.deepEqual(ids(await store.list('connection', { host: 'h2', status: 'connected' })), []);
    assert.deepEqual(ids(await store.list('volume', { host: 'h1' })), [], 'only connections have a host');
    assert.deepEqual(ids(await store.list('snapshot')), sorted(s1, s2));
  });

  it('lists oldest first, then by id', async () => {
    const store = await fresh();
    const t = (n: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString();
    const records = [
      volumeRecord({ id: 'c', createdAt: t(1) }),
      volumeRecord({ id: 'a', createdAt: t(2) }),
      volumeRecord({ id: 'b', createdAt: t(1) }),
      volumeRecord({ id: 'z', createdAt: t(0) }),
      volumeRecord({ id: 'A', createdAt: t(1) }),
    ];
    for (const r of [records[1]!, records[3]!, records[0]!, records[4]!, records[2]!]) await add(store, r);
    assert.deepEqual(
      (await store.list('volume')).map((r) => r.id),
      ['z', 'A', 'b', 'c', 'a'],
    );
    assert.deepEqual(
      (await store.list('volume', { backend: 'b1' })).map((r) => r.id),
      ['z', 'A', 'b', 'c', 'a'],
    );
  });
}

function concurrency(fresh: Open) {
  it('refuses a write based on a stale version with CONFLICT', async () => {
    const store = await fresh();
    const v1 = await add(store, volumeRecord());
    const v2 = await store.put({ ...v1, description: 'second' });
    await rejectsWith(store.put({ ...v1, description: 'stale' }), ErrorCode.Conflict);
    await rejectsWith(store.put({ ...v2, version: 5 }), ErrorCode.Conflict);
    assert.deepEqual(await store.get('volume', v1.id), v2, 'a refused write changes nothing');
    await store.remove('volume', v1.id);
    await rejectsWith(store.put(v2), ErrorCode.Conflict, v1.id);
    assert.equal(
      await store.get('volume', v1.id),
      null,
      'an update of a removed record does not re-create it',
    );
  });

  it('requires version 0 for a new record, and refuses version 0 for an existing one', async () => {
    const store = await fresh();
    await rejectsWith(store.put(volumeRecord({ version: 1 })), ErrorCode.Conflict);
    assert.deepEqual(await store.list('volume'), []);
    const r = volumeRecord();
    const stored = await add(store, r);
    await rejectsWith(store.put(r), ErrorCode.Conflict);
    assert.deepEqual(await store.get('volume', r.id), stored);
  });

  it('lets exactly one of several writes of the same version win', async () => {
    const store = await fresh();
    const v1 = await add(store, volumeRecord());
    const results = await Promise.allSettled(
      [1, 2, 3, 4, 5].map((i) => store.put({ ...v1, description: `writer ${i}` })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results)
      if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, ErrorCode.Conflict);
    assert.deepEqual(await store.get('volume', v1.id), (won[0] as PromiseFulfilledResult<AnyRecord>).value);
  });

  it('keeps names unique per kind and backend', async () => {
    const store = await fresh();
    const v = await add(store, volumeRecord({ backend: 'b1', name: 'data' }));
    await rejectsWith(add(store, volumeRecord({ backend: 'b1', name: 'data' })), ErrorCode.AlreadyExists);
    await add(store, volumeRecord({ backend: 'b2', name: 'data' }));
    await add(store, snapshotRecord({ backend: 'b1', name: 'data' }));
    await add(store, connectionRecord({ backend: 'b1', name: 'data' }));
    await add(store, volumeRecord({ backend: 'b1', name: null }));
    await add(store, volumeRecord({ backend: 'b1', name: null }));
    await add(store, volumeRecord({ backend: 'b1', name: 'DATA' }));
    const other = await add(store, volumeRecord({ backend: 'b1', name: 'other' }));
    await rejectsWith(store.put({ ...other, name: 'data' }), ErrorCode.AlreadyExists);
    assert.equal((await store.get('volume', other.id))!.name, 'other', 'a refused rename changes nothing');
    assert.equal((await store.list('volume', { backend: 'b1', name: 'data' })).length, 1);
    await store.remove('volume', v.id);
    await add(store, volumeRecord({ backend: 'b1', name: 'data' }));
    assert.equal((await store.list('volume')).length, 6);
  });
}

function values(fresh: Open) {
  it('round-trips unicode names, large metadata and sizes up to 2^53-1', async () => {
    const store = await fresh();
    const names = ['データ-1', 'ñandú', '😀-emoji', 'e\u0301', '\u00e9', 'ZWJ-👩‍👩‍👧', 'ﬁ', 'Ω'];
    for (const name of names) await add(store, volumeRecord({ name, description: `${name} ✓` }));
    for (const name of names) {
      const found = await store.list('volume', { name });
      assert.equal(found.length, 1, `exactly one volume named ${name} (no normalization)`);
      assert.equal(found[0]!.name, name);
    }
    const big = 'x'.repeat(1024 * 1024);
    const huge = volumeRecord({
      size: Number.MAX_SAFE_INTEGER,
      metadata: { big, ключ: 'значение' },
      driverData: {
        blob: big,
        n: Number.MAX_SAFE_INTEGER,
        neg: -Number.MAX_SAFE_INTEGER,
        f: 0.1,
        deep: [[{}]],
      },
    });
    const stored = await add(store, huge);
    const got = (await store.get('volume', huge.id))!;
    assert.deepEqual(got, stored);
    assert.equal(got.size, 9007199254740991);
    assert.equal(got.metadata.big!.length, 1024 * 1024);
    const snap = await add(store, snapshotRecord({ size: Number.MAX_SAFE_INTEGER - 1 }));
    assert.equal((await store.get('snapshot', snap.id))!.size, Number.MAX_SAFE_INTEGER - 1);
  });
}

function keyValues(fresh: Open) {
  it('stores, overwrites, lists and deletes key/values', async () => {
    const store = await fresh();
    assert.equal(await store.getKV('missing'), null);
    assert.equal(await store.deleteKV('missing'), false);
    assert.deepEqual(await store.listKV(), {});
    await store.setKV('b/2', 'two');
    await store.setKV('a/1', 'one');
    await store.setKV('b/1', '');
    await store.setKV('ключ', '値 😀');
    await store.setKV('big', 'y'.repeat(1024 * 1024));
    assert.equal(await store.getKV('b/1'), '', 'an empty value is a value');
    assert.equal(await store.getKV('ключ'), '値 😀');
    assert.equal((await store.getKV('big'))!.length, 1024 * 1024);
    await store.setKV('a/1', 'uno');
    assert.equal(await store.getKV('a/1'), 'uno');
    assert.deepEqual(await store.listKV('b/'), { 'b/1': '', 'b/2': 'two' });
    assert.deepEqual(Object.keys(await store.listKV()), ['a/1', 'b/1', 'b/2', 'big', 'ключ']);
    assert.equal(await store.deleteKV('a/1'), true);
    assert.equal(await store.getKV('a/1'), null);
    assert.equal(await store.deleteKV('a/1'), false);
    assert.deepEqual(await store.listKV('a'), {});
  });
}

function exactness(fresh: Open) {
  it('compares names and keys exactly: case, accents and trailing spaces matter', async () => {
    // MySQL's default collations would call all of these equal; every store must not.
    const store = await fresh();
    const names = ['Data', 'data', 'DATA', 'data ', 'résumé', 'resume', 'RÉSUMÉ', 'straße', 'strasse'];
    for (const name of names) await add(store, volumeRecord({ backend: 'b1', name }));
    for (const name of names) {
      const found = await store.list('volume', { backend: 'b1', name });
      assert.deepEqual(
        found.map((r) => r.name),
        [name],
        `only ${JSON.stringify(name)} matches ${JSON.stringify(name)}`,
      );
    }
    await rejectsWith(add(store, volumeRecord({ backend: 'b1', name: 'Data' })), ErrorCode.AlreadyExists);
    const keys = ['k', 'K', 'k ', 'é', 'e', 'É'];
    for (const [i, k] of keys.entries()) await store.setKV(k, `value ${i}`);
    for (const [i, k] of keys.entries()) assert.equal(await store.getKV(k), `value ${i}`);
    assert.deepEqual(Object.keys(await store.listKV()).sort(), [...keys].sort());
    assert.equal(await store.deleteKV('K'), true);
    assert.equal(await store.getKV('k'), 'value 0', 'deleting "K" leaves "k"');
    const byId = await add(store, volumeRecord({ id: 'Id-1' }));
    assert.equal(await store.get('volume', 'id-1'), null, 'ids are case-sensitive');
    assert.deepEqual(await store.get('volume', 'Id-1'), byId);
  });
}

function transactions(fresh: Open) {
  it('rolls back a restore that fails on a name clash: nothing is written', async () => {
    const store = await fresh();
    const a = await add(store, volumeRecord({ backend: 'b1', name: 'a' }));
    const b = await add(store, volumeRecord({ backend: 'b1', name: 'b' }));
    // Restoring a's id under b's name: the old a must survive the failed replacement.
    await rejectsWith(
      store.restore({ ...a, name: 'b', description: 'replaced', version: 9 }),
      ErrorCode.AlreadyExists,
    );
    assert.deepEqual(await store.get('volume', a.id), a, 'the record the restore would replace is intact');
    const newcomer = volumeRecord({ backend: 'b1', name: 'a' });
    await rejectsWith(store.restore(newcomer), ErrorCode.AlreadyExists);
    assert.equal(await store.get('volume', newcomer.id), null);
    assert.deepEqual((await store.list('volume')).map((r) => r.id).sort(), [a.id, b.id].sort());
  });
}

function racing(fresh: Open) {
  it('lists in a stable order while another task inserts', async () => {
    const store = await fresh();
    const at = (n: number) => new Date(Date.UTC(2024, 0, 1) + n * 1000).toISOString();
    const seeded: AnyRecord[] = [];
    for (let i = 0; i < 30; i++) seeded.push(await add(store, volumeRecord({ createdAt: at(i * 2) })));
    const first = (await store.list('volume')).map((r) => r.id);
    const seededIds = new Set(first);
    let writing = true;
    const writer = (async () => {
      try {
        // Newcomers land between, before and after the seeded records, some at equal times.
        for (let i = 0; i < 30; i++)
          await add(store, volumeRecord({ createdAt: at(i % 3 === 0 ? i * 2 : i * 2 + 1 - 60 * (i % 2)) }));
      } finally {
        writing = false;
      }
    })();
    let listings = 0;
    while (writing || listings < 3) {
      const listed = await store.list('volume');
      listings++;
      const sorted = [...listed].sort(byCreation);
      assert.deepEqual(
        listed.map((r) => r.id),
        sorted.map((r) => r.id),
        'every listing is in creation order',
      );
      assert.deepEqual(
        listed.map((r) => r.id).filter((id) => seededIds.has(id)),
        first,
        'records listed before keep their relative order, and none is missing',
      );
    }
    await writer;
    assert.equal((await store.list('volume')).length, 60);
  });

  it('lets concurrent writers of one key or one restored id all succeed; one of them wins', async () => {
    const store = await fresh();
    const values = Array.from({ length: 12 }, (_, i) => `value ${i}`);
    await Promise.all(values.map((v) => store.setKV('shared', v)));
    assert.ok(values.includes((await store.getKV('shared'))!));
    assert.deepEqual(Object.keys(await store.listKV()), ['shared']);
    const id = volumeRecord().id;
    const versions = values.map((_, i) => volumeRecord({ id, version: i + 1, description: `copy ${i}` }));
    await Promise.all(versions.map((r) => store.restore(r)));
    const got = await store.list('volume');
    assert.equal(got.length, 1);
    assert.ok(versions.some((r) => JSON.stringify(r) === JSON.stringify(got[0])));
  });

  it('serves many operations at once', async () => {
    const store = await fresh();
    const records = Array.from({ length: 40 }, (_, i) => volumeRecord({ name: `many-${i}` }));
    const stored = await Promise.all(records.map((r) => add(store, r)));
    const again = await Promise.all(stored.map((r) => store.put({ ...r, description: 'updated' })));
    const got = await Promise.all(records.map((r) => store.get('volume', r.id)));
    assert.deepEqual(got, again);
    assert.equal((await store.list('volume')).length, 40);
  });
}
