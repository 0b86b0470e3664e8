import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Cairn } from '../../src/index.js';

describe('contexts in one process', () => {
  const dirs: string[] = [];
  const newDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'cairn-ctx-'));
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('keep separate states and backends', async () => {
    const [a, b] = [await newDir(), await newDir()];
    const one = await Cairn.open({ state: 'memory:', lockDir: join(a, 'locks') });
    const two = await Cairn.open({ state: `sqlite:${join(b, 'cairn.db')}` });
    try {
      const poolA = await one.addBackend('pool', { driver: 'file', path: join(a, 'pool') });
      const poolB = await two.addBackend('pool', { driver: 'file', path: join(b, 'pool') });
      const va = await poolA.createVolume({ size: '1MiB', name: 'same-name' });
      const vb = await poolB.createVolume({ size: '2MiB', name: 'same-name' });
      assert.notEqual(va.id, vb.id);
      assert.deepEqual(
        (await one.volumes()).map((v) => v.id),
        [va.id],
      );
      assert.deepEqual(
        (await two.volumes()).map((v) => v.id),
        [vb.id],
      );
      assert.equal((await one.volume('same-name')).size, 1024 * 1024);
      assert.equal((await two.volume('same-name')).size, 2 * 1024 * 1024);
      await assert.rejects(two.volume(va.id), { code: 'NOT_FOUND' });
      await va.delete();
      assert.equal((await two.volumes()).length, 1, 'deleting in one context leaves the other alone');
      assert.deepEqual(await readdir(join(b, 'pool')), [`volume-${vb.id}`]);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('on the same state take turns: one name is created once', async () => {
    const d = await newDir();
    const state = `sqlite:${join(d, 'cairn.db')}`;
    const contexts = await Promise.all([Cairn.open({ state }), Cairn.open({ state }), Cairn.open({ state })]);
    try {
      const pools = await Promise.all(
        contexts.map((c) => c.addBackend('pool', { driver: 'file', path: join(d, 'pool') })),
      );
      const results = await Promise.allSettled(
        pools.map((p) => p.createVolume({ size: '1MiB', name: 'only-one' })),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(ok.length, 1);
      assert.deepEqual(
        failed.map((r) => r.reason.code),
        ['ALREADY_EXISTS', 'ALREADY_EXISTS'],
      );
      assert.equal((await readdir(join(d, 'pool'))).filter((n) => n.startsWith('volume-')).length, 1);
    } finally {
      for (const c of contexts) await c.close();
    }
  });

  it('take the host connector multipath default from Cairn.open, and a call overrides it', async () => {
    const on = await Cairn.open({ state: 'memory:', multipath: true });
    const off = await Cairn.open({ state: 'memory:' });
    try {
      assert.equal((await on.hostConnector()).multipath, true);
      assert.equal((await on.hostConnector({ multipath: false })).multipath, false);
      assert.equal((await off.hostConnector()).multipath, false);
      await assert.rejects(Cairn.open({ state: 'memory:', multipath: 'yes' as never }), /multipath/);
    } finally {
      await on.close();
      await off.close();
    }
  });
});
