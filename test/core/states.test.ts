import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONNECTION_STATUSES, SNAPSHOT_STATUSES, VOLUME_STATUSES } from '../../src/core/records.js';
import { assertStatus, assertTransition } from '../../src/core/states.js';
import { Cairn, ErrorCode, isCairnError, type StateStore } from '../../src/index.js';
import { createMemoryStore } from '../../src/state/memory.js';
import { rejectsWith, throwsWith } from '../harness/assert.js';
import { detachLoopsUnder } from '../harness/loops.js';
import { tempDir } from '../harness/tmp.js';

const allowed = (kind: 'volume' | 'snapshot' | 'connection', from: string, to: string) => {
  try {
    assertTransition(kind, 'x', from, to);
    return true;
  } catch (err) {
    assert.ok(isCairnError(err, ErrorCode.InvalidState));
    return false;
  }
};

describe('state transitions', () => {
  it('follow the life cycle: create, use, extend, delete', () => {
    const yes: Array<[string, string]> = [
      ['creating', 'available'],
      ['creating', 'error'],
      ['available', 'in-use'],
      ['in-use', 'available'],
      ['available', 'extending'],
      ['in-use', 'extending'],
      ['extending', 'available'],
      ['extending', 'in-use'],
      ['available', 'deleting'],
      ['deleting', 'error_deleting'],
      ['error_deleting', 'deleting'],
      ['error', 'deleting'],
    ];
    const no: Array<[string, string]> = [
      ['creating', 'in-use'],
      ['available', 'creating'],
      ['in-use', 'deleting'], // disconnect first
      ['error_deleting', 'available'],
      ['deleting', 'in-use'],
      ['available', 'available'],
      ['available', 'no-such-state'],
      ['no-such-state', 'available'],
    ];
    for (const [from, to] of yes) assert.ok(allowed('volume', from, to), `volume ${from} -> ${to}`);
    for (const [from, to] of no) assert.ok(!allowed('volume', from, to), `volume ${from} -/-> ${to}`);
    assert.ok(allowed('snapshot', 'creating', 'available'));
    assert.ok(!allowed('snapshot', 'available', 'creating'));
    assert.ok(!allowed('snapshot', 'error_deleting', 'available'));
    assert.ok(allowed('connection', 'attached', 'detaching'));
    assert.ok(!allowed('connection', 'attached', 'disconnecting'), 'detach before disconnecting');
    assert.ok(!allowed('connection', 'connecting', 'attached'));
  });

  it('cover every state: each is reachable from the first and can reach an end', () => {
    const tables = [
      ['volume', VOLUME_STATUSES, 'creating'],
      ['snapshot', SNAPSHOT_STATUSES, 'creating'],
      ['connection', CONNECTION_STATUSES, 'connecting'],
    ] as const;
    for (const [kind, states, first] of tables) {
      const reached = new Set<string>([first]);
      for (let grew = true; grew; ) {
        grew = false;
        for (const from of [...reached])
          for (const to of states)
            if (!reached.has(to) && allowed(kind, from, to)) {
              reached.add(to);
              grew = true;
            }
      }
      assert.deepEqual([...reached].sort(), [...states].sort(), `${kind}: every state is reachable`);
      const end = kind === 'connection' ? 'disconnecting' : 'deleting';
      for (const s of states) {
        const seen = new Set<string>([s]);
        for (let grew = true; grew; ) {
          grew = false;
          for (const from of [...seen])
            for (const to of states)
              if (!seen.has(to) && allowed(kind, from, to)) {
                seen.add(to);
                grew = true;
              }
        }
        assert.ok(seen.has(end) || s === end, `${kind} ${s} can reach ${end}`);
      }
    }
  });

  it('name the object, its state and what was wanted when refused', () => {
    const t = throwsWith(
      () => assertTransition('volume', 'vol-1', 'in-use', 'deleting'),
      ErrorCode.InvalidState,
      'vol-1',
      'in-use',
      'deleting',
    );
    assert.deepEqual(t.details, { kind: 'volume', id: 'vol-1', status: 'in-use', wanted: 'deleting' });
    const s = throwsWith(
      () => assertStatus('snapshot', 's-1', 'creating', ['available'], 'delete'),
      ErrorCode.InvalidState,
      'delete',
      's-1',
      'creating',
      'available',
    );
    assert.equal(s.details?.operation, 'delete');
    assertStatus('volume', 'v', 'available', ['available', 'in-use'], 'clone');
  });
});

/** A memory store that records each status change a write makes. */
function recordingStore(changes: string[]): StateStore {
  const inner = createMemoryStore();
  return {
    ...inner,
    async put(record) {
      const before = await inner.get(record.kind, record.id);
      changes.push(`${record.kind}:${before?.status ?? '(new)'}->${record.status}`);
      return inner.put(record);
    },
  };
}

describe('operations make only allowed transitions', () => {
  it('through create, attach, online extend, snapshot, clone, failures and delete', async () => {
    const dir = await tempDir();
    const changes: string[] = [];
    const cairn = await Cairn.open({
      state: { factory: () => recordingStore(changes) },
      lockDir: `${dir.path}/locks`,
    });
    try {
      const pool = await cairn.addBackend('pool', { driver: 'file', path: `${dir.path}/pool` });
      const vol = await pool.createVolume({ size: '8MiB' });
      await vol.attach();
      await vol.extend('16MiB');
      const snap = await vol.createSnapshot();
      await rejectsWith(vol.attach(), ErrorCode.InvalidState);
      await vol.detach();
      const clone = await vol.clone();
      const restored = await snap.createVolume();
      const thick = await cairn.addBackend('thick', {
        driver: 'file',
        path: `${dir.path}/thick`,
        provisioning: 'thick',
      });
      const fat = await thick.createVolume({ size: '1MiB' });
      await rejectsWith(fat.extend(2 ** 52), ErrorCode.InsufficientCapacity);
      const conn = await fat.connect(await cairn.hostConnector());
      await conn.attach();
      await conn.detach();
      await conn.disconnect();
      for (const v of [fat, restored, clone]) await v.delete();
      await snap.delete();
      await vol.delete();
      assert.deepEqual(await cairn.volumes(), []);
    } finally {
      await cairn.close();
      await detachLoopsUnder(dir.path);
      await dir.cleanup();
    }
    const firsts = { volume: 'creating', snapshot: 'creating', connection: 'connecting' } as const;
    const seen = new Set<string>();
    for (const change of changes) {
      const [, kind, from, to] = /^(\w+):(.+)->(.+)$/.exec(change)!;
      const k = kind as keyof typeof firsts;
      if (from === '(new)') assert.equal(to, firsts[k], `a new ${kind} starts ${firsts[k]}`);
      else if (from !== to) assert.ok(allowed(k, from!, to!), `${change} is not in the transition table`);
      seen.add(change);
    }
    for (const expected of [
      'volume:available->in-use',
      'volume:in-use->extending',
      'volume:extending->in-use',
      'volume:available->extending',
      'volume:extending->available',
      'connection:attached->detaching',
      'volume:available->deleting',
    ])
      assert.ok(seen.has(expected), `${expected} happened (recorded: ${[...seen].join(', ')})`);
  });
});
