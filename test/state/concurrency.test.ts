/**
 * Several `node` processes sharing one PostgreSQL (or MariaDB) state store and one `file`
 * backend directory: no lost update, one winner per name, per-object locks through the store's
 * shared lock (never lock files), and locks freed when their holder is killed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Cairn, ErrorCode } from '../../src/index.js';
import { rejectsWith } from '../harness/assert.js';
import { type Child, jsonLine, killChildren, spawnChild } from '../harness/children.js';
import { createTestDatabase, SERVER_KINDS, serverName, type TestDatabase } from '../harness/databases.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

const MiB = 1024 * 1024;

after(() => killChildren());

interface WorkerResult {
  result: 'ok' | 'error';
  id?: string;
  code?: string | null;
  message?: string;
  targets?: number[];
  made?: string[];
  errors?: Array<{ code: string | null; message: string }>;
}

for (const kind of SERVER_KINDS) {
  describe(`${serverName(kind)}: several processes on one store and one file backend`, {
    timeout: 180_000,
  }, () => {
    let db: TestDatabase;
    let dir: TempDir;
    let pool: string;
    let lockDir: string;
    let cairn: Cairn;

    before(async () => {
      db = await createTestDatabase(kind);
      dir = await tempDir('cairn-db-concurrency-');
      pool = join(dir.path, 'pool');
      lockDir = join(dir.path, 'locks');
      cairn = await Cairn.open({ state: db.url, lockDir });
      await cairn.addBackend('pool', { driver: 'file', path: pool });
    });
    after(async () => {
      await cairn?.close();
      await dir?.cleanup();
    });

    /** Starts one worker per job, lets them all go at once, and returns their reports. */
    async function race(jobs: object[]): Promise<WorkerResult[]> {
      const children: Child[] = jobs.map((job) =>
        spawnChild('store-worker', [db.url, pool, lockDir, JSON.stringify(job)]),
      );
      await Promise.all(children.map((c) => jsonLine(c, 'ready', 30_000)));
      for (const c of children) c.send('go');
      const results = await Promise.all(children.map((c) => jsonLine<WorkerResult>(c, 'result', 120_000)));
      const exits = await Promise.all(children.map((c) => c.exited));
      assert.deepEqual(
        exits.map((e) => e.code),
        exits.map(() => 0),
        exits.map((e) => e.stderr).join('\n'),
      );
      return results;
    }

    const files = async (prefix: string) => (await readdir(pool)).filter((f) => f.startsWith(prefix));

    it('one name from six processes at once: exactly one wins, the others get ALREADY_EXISTS', async () => {
      for (const [round, name] of ['dup-1', 'dup-2'].entries()) {
        const results = await race(Array.from({ length: 6 }, () => ({ op: 'create', name })));
        const winners = results.filter((r) => r.result === 'ok');
        assert.equal(winners.length, 1, JSON.stringify(results));
        for (const r of results)
          if (r.result === 'error') assert.equal(r.code, ErrorCode.AlreadyExists, r.message);
        const vols = await cairn.volumes({ name });
        assert.deepEqual(
          vols.map((v) => v.id),
          [winners[0]!.id],
        );
        assert.equal((await files('volume-')).length, round + 1, 'the losers left no file behind');
      }
    });

    it('extends and snapshots one volume from four processes: no update is lost', async () => {
      const backend = cairn.backend('pool');
      const vol = await backend.createVolume({ size: MiB, name: 'shared' });
      const results = await race([
        { op: 'extend', volume: 'shared', times: 8 },
        { op: 'extend', volume: 'shared', times: 8 },
        { op: 'extend', volume: 'shared', times: 8 },
        { op: 'snapshot', volume: 'shared', prefix: 'a', times: 5 },
        { op: 'snapshot', volume: 'shared', prefix: 'b', times: 5 },
      ]);
      // A stale read may ask for a size the volume already has passed: refused, nothing lost.
      for (const r of results)
        for (const e of r.errors ?? [])
          assert.ok(e.code === ErrorCode.InvalidArgument && /smaller/.test(e.message), e.message);
      await vol.refresh();
      assert.equal(vol.status, 'available');
      assert.equal(vol.lastError, null);
      const targets = [...new Set(results.flatMap((r) => r.targets ?? []))].sort((a, b) => a - b);
      // Every size from 1 MiB up was reached by exactly one real extend, each 1 MiB at a time.
      assert.deepEqual(
        targets,
        Array.from({ length: (vol.size - MiB) / MiB }, (_, i) => MiB + (i + 1) * MiB),
      );
      assert.ok(vol.size > MiB);
      assert.equal((await stat(join(pool, `volume-${vol.id}`))).size, vol.size, 'file and record agree');
      const snaps = await cairn.snapshots({ volumeId: vol.id });
      assert.equal(snaps.length, 10, JSON.stringify(results.map((r) => r.errors)));
      for (const s of snaps) {
        assert.equal((await stat(join(pool, `snapshot-${s.id}`))).size, s.size, `snapshot ${s.name}`);
        assert.ok(s.size >= MiB && s.size <= vol.size && s.size % MiB === 0);
      }
      for (const s of snaps) await s.delete();
      await vol.delete();
    });

    it('creates, extends and deletes different volumes from four processes', async () => {
      const backend = cairn.backend('pool');
      const own = await Promise.all(
        [0, 1, 2, 3].map((i) => backend.createVolume({ size: MiB, name: `own-${i}` })),
      );
      const before = (await files('volume-')).length;
      const results = await race([
        ...own.map((v) => ({ op: 'extend', volume: v.id, times: 6 })),
        ...[0, 1, 2, 3].map((i) => ({ op: 'churn', prefix: `churn-${i}`, times: 5 })),
      ]);
      for (const r of results) assert.deepEqual(r.errors, [], JSON.stringify(r.errors));
      for (const v of own) {
        await v.refresh();
        assert.equal(v.size, 7 * MiB, `${v.name}: six extends of 1 MiB, none lost`);
        assert.equal((await stat(join(pool, `volume-${v.id}`))).size, 7 * MiB);
      }
      assert.equal((await cairn.volumes()).filter((v) => v.name?.startsWith('churn-')).length, 0);
      assert.equal((await files('volume-')).length, before, 'churned volumes left no file behind');
    });

    it('holds per-object locks across processes through the store, never with lock files', async () => {
      const children = [0, 1, 2, 3].map(() => spawnChild('count-store', [db.url, 'counter', '25']));
      await Promise.all(children.map((c) => jsonLine(c, 'ready', 30_000)));
      for (const c of children) c.send('go');
      await Promise.all(children.map((c) => jsonLine(c, 'done', 120_000)));
      assert.equal(await cairn.store.getKV('counter'), '100', 'no increment was lost');
      // Every test of this suite ran Cairn with lockDir set: the store's lock made it unused.
      assert.equal(existsSync(lockDir), false, `${lockDir} was created`);
    });

    it('frees the lock of a holder killed with SIGKILL at once', async () => {
      const store = cairn.store;
      const holder = spawnChild('hold-store-lock', [db.url, 'volume:killed']);
      await jsonLine(holder, 'locked');
      await rejectsWith(store.lock!('volume:killed', Date.now() + 300), ErrorCode.Busy, 'volume:killed');
      holder.process.kill('SIGKILL');
      await holder.exited;
      const started = Date.now();
      const release = await store.lock!('volume:killed', Date.now() + 10_000);
      const took = Date.now() - started;
      assert.ok(took < 3_000, `took ${took} ms after the holder died`);
      await release();
    });
  });
}
