/**
 * PostgreSQL and MariaDB/MySQL stores, beyond the conformance suite: what opening creates and
 * refuses, how failures read (never with the password), and the shared locks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { ErrorCode } from '../../src/index.js';
import { openStateStore } from '../../src/state/open.js';
import type { StateStore } from '../../src/state/spi.js';
import { parseServerUrl } from '../../src/state/url.js';
import { rejectsWith } from '../harness/assert.js';
import { type Child, jsonLine, killChildren, spawnChild } from '../harness/children.js';
import {
  closedPort,
  createTestDatabase,
  SERVER_KINDS,
  serverName,
  silentServer,
  type TestDatabase,
} from '../harness/databases.js';
import { volumeRecord } from '../harness/records.js';

after(() => killChildren());

/** Every table of the database with its columns (and their types and collations). */
async function schemaOf(db: TestDatabase): Promise<string[]> {
  const rows = await db.admin.query<{ t: string; c: string; ty: string; co: string | null }>(
    db.kind === 'postgres'
      ? 'select table_name as t, column_name as c, data_type as ty, collation_name as co from information_schema.columns where table_schema = current_schema()'
      : 'select table_name as t, column_name as c, column_type as ty, collation_name as co from information_schema.columns where table_schema = database()',
  );
  return rows.map((r) => `${r.t}.${r.c} ${r.ty} ${r.co ?? ''}`).sort();
}

const openUrl = (url: string) => openStateStore(url, { withLock: (_k, fn) => fn() });

const tablesOf = async (db: TestDatabase) => [...new Set((await schemaOf(db)).map((c) => c.split('.')[0]))];

/** Asserts `err` and everything it holds (causes, fields) never contain `secret`. */
function assertNoSecret(err: unknown, secret: string): void {
  const text = `${String(err)}\n${inspect(err, { depth: 20, showHidden: true })}`;
  for (const form of [secret, encodeURIComponent(secret)])
    assert.ok(!text.includes(form), `the error shows the password: ${text.slice(0, 2000)}`);
}

const within = async <T>(ms: number, p: Promise<T>, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
};

for (const kind of SERVER_KINDS) {
  const name = serverName(kind);

  describe(`${name} state store: opening`, () => {
    it('creates its tables once, and leaves other tables of a shared database alone', async () => {
      const db = await createTestDatabase(kind);
      await db.admin.query('create table app_users (id integer primary key, name varchar(40))');
      await db.admin.query("insert into app_users values (1, 'ann')");
      const first = await db.open();
      const rec = await first.put(volumeRecord({ name: 'kept', size: Number.MAX_SAFE_INTEGER }));
      await first.close();
      const second = await db.open();
      assert.deepEqual(await second.get('volume', rec.id), rec);
      await second.close();
      assert.deepEqual(await tablesOf(db), [
        'app_users',
        'cairn_kv',
        'cairn_migration',
        'cairn_migration_lock',
        'cairn_objects',
      ]);
      const migrations = await db.admin.query<{ name: string }>('select name from cairn_migration');
      assert.deepEqual(
        migrations.map((m) => m.name),
        ['0001_objects'],
      );
      assert.deepEqual(await db.admin.query('select id, name from app_users'), [{ id: 1, name: 'ann' }]);
      const lifted = await db.admin.query<{ version: unknown; data: string }>(
        'select version, data from cairn_objects',
      );
      assert.equal(String(lifted[0]!.version), '1', 'the version column agrees with the document');
      assert.equal(JSON.parse(lifted[0]!.data).size, Number.MAX_SAFE_INTEGER);
    });

    if (kind === 'mysql') {
      it('makes InnoDB utf8mb4 tables that compare exactly, in a latin1 case-insensitive database', async () => {
        const db = await createTestDatabase(kind);
        await (await db.open()).close();
        const tables = await db.admin.query<{ t: string; engine: string; co: string }>(
          "select table_name as t, engine, table_collation as co from information_schema.tables where table_schema = database() and table_name in ('cairn_objects', 'cairn_kv') order by 1",
        );
        for (const t of tables) {
          assert.equal(t.engine, 'InnoDB', t.t);
          assert.match(t.co, /^utf8mb4_(nopad_bin|0900_bin|bin)$/, t.t);
        }
        const columns = await schemaOf(db);
        for (const col of [
          'cairn_objects.name',
          'cairn_objects.id',
          'cairn_objects.backend',
          'cairn_kv.kv_key',
        ])
          assert.match(columns.find((c) => c.startsWith(`${col} `)) ?? col, / utf8mb4_\w*bin$/, col);
        assert.ok(columns.some((c) => c.startsWith('cairn_objects.data longtext')));
        assert.ok(columns.some((c) => c.startsWith('cairn_kv.kv_value longtext')));
      });
    }

    it("refuses a database holding someone else's cairn_* tables and changes nothing", async () => {
      const db = await createTestDatabase(kind);
      await db.admin.query('create table cairn_objects (x integer, note varchar(20))');
      await db.admin.query("insert into cairn_objects values (7, 'not ours')");
      const before = await schemaOf(db);
      await rejectsWith(db.open(), ErrorCode.StateStoreFailure, 'cairn_objects', 'cairn_migration');
      assert.deepEqual(await schemaOf(db), before, 'no table or column was created or changed');
      assert.deepEqual(await db.admin.query('select x, note from cairn_objects'), [
        { x: 7, note: 'not ours' },
      ]);
    });

    it('refuses a schema from a newer Cairn and changes nothing', async () => {
      const db = await createTestDatabase(kind);
      const store = await db.open();
      const rec = await store.put(volumeRecord({ name: 'kept' }));
      await store.close();
      await db.admin.query('insert into cairn_migration (name, timestamp) values (?, ?)', [
        '9999_from_the_future',
        new Date().toISOString(),
      ]);
      const before = await schemaOf(db);
      await rejectsWith(db.open(), ErrorCode.StateStoreFailure, '9999_from_the_future', 'upgrade Cairn');
      assert.deepEqual(await schemaOf(db), before);
      const rows = await db.admin.query<{ id: string }>('select id from cairn_objects');
      assert.deepEqual(
        rows.map((r) => r.id),
        [rec.id],
      );
    });

    it('names a database that does not exist, and creates none', async () => {
      const db = await createTestDatabase(kind);
      const missing = `${db.name}_missing`;
      const err = await rejectsWith(
        openUrl(db.urlOf(missing)),
        ErrorCode.StateStoreFailure,
        missing,
        'create it first',
      );
      assert.ok(err.message.includes('127.0.0.1:'), err.message);
      const names = await db.admin.query<{ n: string }>(
        kind === 'postgres'
          ? 'select datname as n from pg_database where datname = ?'
          : 'select schema_name as n from information_schema.schemata where schema_name = ?',
        [missing],
      );
      assert.deepEqual(names, []);
    });

    it('names host and port when nothing listens there, at once', async () => {
      const port = await closedPort();
      const url = `${kind}://someone:Cl0sed-Port-Secret@127.0.0.1:${port}/cairn`;
      const started = Date.now();
      const err = await rejectsWith(
        openUrl(url),
        ErrorCode.StateStoreFailure,
        `127.0.0.1:${port}`,
        'connection refused',
      );
      assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
      assertNoSecret(err, 'Cl0sed-Port-Secret');
      assert.ok(err.message.includes('someone:***@'), err.message);
    });

    it('gives up on a server that never answers after connectTimeoutMs', async () => {
      const silent = await silentServer();
      try {
        const url = `${kind}://someone:S1lent-Secret@127.0.0.1:${silent.port}/cairn?connectTimeoutMs=400`;
        const started = Date.now();
        const err = await rejectsWith(
          openUrl(url),
          ErrorCode.StateStoreFailure,
          `127.0.0.1:${silent.port}`,
          '400 ms',
        );
        const took = Date.now() - started;
        assert.ok(took >= 350 && took < 3_000, `took ${took} ms`);
        assertNoSecret(err, 'S1lent-Secret');
      } finally {
        await silent.close();
      }
    });

    it('reports wrong credentials without the password', async () => {
      const db = await createTestDatabase(kind);
      const user = `cairn_user_${db.name.slice(-8)}`;
      const right = 'R1ght p@ss/w:rd#?';
      const wrong = 'Wr0ng-S3cret-pw/@#';
      const { host, port } = parseServerUrl(db.url);
      const open = (u: string, pw: string) =>
        openUrl(`${kind}://${u}:${encodeURIComponent(pw)}@${host}:${port}/${db.name}`);
      if (kind === 'mysql') {
        await db.admin.query(`create user '${user}'@'%' identified by '${right}'`);
        await db.admin.query(`create user '${user}'@'localhost' identified by '${right}'`);
        await db.admin.query(`grant all on \`${db.name}\`.* to '${user}'@'%'`);
        await db.admin.query(`grant all on \`${db.name}\`.* to '${user}'@'localhost'`);
        try {
          // The right (percent-encoded) password opens it: the user is real, the password decoded.
          await (await open(user, right)).close();
          const err = await rejectsWith(
            open(user, wrong),
            ErrorCode.StateStoreFailure,
            'authentication failed',
          );
          assertNoSecret(err, wrong);
          assert.ok(err.message.includes(`${user}:***@`), err.message);
        } finally {
          await db.admin.query(`drop user '${user}'@'%'`);
          await db.admin.query(`drop user '${user}'@'localhost'`);
        }
      } else {
        // The test server trusts 127.0.0.1 (any password passes): an unknown role is refused.
        const err = await rejectsWith(
          open(user, wrong),
          ErrorCode.StateStoreFailure,
          'authentication failed',
          user,
        );
        assertNoSecret(err, wrong);
      }
    });

    it('lets several processes open a brand-new database at once; migrations run once', {
      timeout: 60_000,
    }, async () => {
      const db = await createTestDatabase(kind);
      const children: Child[] = Array.from({ length: 6 }, () => spawnChild('open-store', [db.url]));
      await Promise.all(children.map((c) => jsonLine(c, 'ready')));
      for (const c of children) c.send('go');
      const results = await Promise.all(
        children.map((c) => jsonLine<{ result: string; message?: string }>(c, 'result', 40_000)),
      );
      assert.deepEqual(
        results.map((r) => r.result),
        results.map(() => 'ok'),
        JSON.stringify(results),
      );
      const migrations = await db.admin.query<{ name: string }>('select name from cairn_migration');
      assert.deepEqual(
        migrations.map((m) => m.name),
        ['0001_objects'],
      );
      const keys = await db.admin.query("select kv_key from cairn_kv where kv_key like 'opened-by-%'");
      assert.equal(keys.length, 6, 'every process wrote to the store');
    });

    it('lets a program that forgets close() exit', { timeout: 30_000 }, async () => {
      const db = await createTestDatabase(kind);
      const child = spawnChild('forget-close', [db.url]);
      await jsonLine(child, 'used');
      const started = Date.now();
      const exit = await within(10_000, child.exited, 'the process to exit');
      assert.equal(exit.code, 0, exit.stderr);
      assert.ok(Date.now() - started < 5_000, `exited ${Date.now() - started} ms after its work`);
    });

    it('keeps working after the server closes its idle connections', async () => {
      const db = await createTestDatabase(kind);
      const store = await db.open();
      const rec = await store.put(volumeRecord());
      await db.admin.query(
        kind === 'postgres'
          ? 'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()'
          : 'select 1',
      );
      if (kind === 'mysql') {
        const ids = await db.admin.query<{ id: number }>(
          'select id from information_schema.processlist where db = database() and id <> connection_id()',
        );
        for (const { id } of ids) await db.admin.query(`kill ${Number(id)}`);
      }
      await sleep(200);
      assert.deepEqual(await store.get('volume', rec.id), rec);
      await store.close();
    });
  });

  describe(`${name} state store: shared locks`, () => {
    let db: TestDatabase;
    const stores: StateStore[] = [];
    before(async () => {
      db = await createTestDatabase(kind);
    });
    const open = async () => {
      const s = await db.open();
      stores.push(s);
      return s as StateStore & Required<Pick<StateStore, 'lock'>>;
    };
    after(async () => {
      for (const s of stores) await s.close().catch(() => {});
    });

    it('makes a second holder wait until the deadline, then fail with BUSY', async () => {
      const [a, b] = [await open(), await open()];
      const release = await a.lock('volume:1', Date.now() + 5_000);
      const started = Date.now();
      await rejectsWith(b.lock('volume:1', Date.now() + 400), ErrorCode.Busy, 'volume:1');
      const waited = Date.now() - started;
      assert.ok(waited >= 350 && waited < 3_000, `waited ${waited} ms`);
      await rejectsWith(b.lock('volume:1', Date.now() - 1), ErrorCode.Busy, 'volume:1');
      await release();
      await release(); // twice is harmless
      const again = await b.lock('volume:1', Date.now() - 1);
      await again();
    });

    it('hands the lock to a waiter as soon as it is released', async () => {
      const [a, b] = [await open(), await open()];
      const release = await a.lock('volume:2', Date.now() + 5_000);
      let releasedAt = 0;
      const waiting = b.lock('volume:2', Date.now() + 5_000).then((r) => ({ r, at: Date.now() }));
      await sleep(150);
      releasedAt = Date.now();
      await release();
      const { r, at } = await waiting;
      assert.ok(at >= releasedAt, 'the waiter did not get it before the release');
      assert.ok(at - releasedAt < 1_000, `the waiter got it ${at - releasedAt} ms after the release`);
      await r();
    });

    it('keeps keys apart, even long ones that share a prefix, and databases apart', async () => {
      const [a, b] = [await open(), await open()];
      const long = `name:pool:volume:${'x'.repeat(300)}`;
      const r1 = await a.lock(`${long}-1`, Date.now() + 1_000);
      const r2 = await b.lock(`${long}-2`, Date.now() + 200);
      const r3 = await b.lock('volume:other', Date.now() + 200);
      await rejectsWith(b.lock(`${long}-1`, Date.now() + 100), ErrorCode.Busy);
      // The same key on another database of the same server is another lock.
      const elsewhere = await createTestDatabase(kind);
      const c = await elsewhere.open();
      const r4 = await c.lock!(`${long}-1`, Date.now() + 200);
      await r4();
      await c.close();
      for (const r of [r1, r2, r3]) await r();
    });

    it('holds many locks at once and still serves statements (locks have their own connections)', async () => {
      const [a, b] = [await open(), await open()];
      // Concurrency 8, up to three locks per operation: 24 locks at once on one store.
      const releases = await Promise.all(
        Array.from({ length: 24 }, (_, i) => a.lock(`many:${i}`, Date.now() + 5_000)),
      );
      const rec = await within(5_000, a.put(volumeRecord()), 'a statement while 24 locks are held');
      assert.equal((await a.get('volume', rec.id))!.id, rec.id);
      await rejectsWith(b.lock('many:7', Date.now() + 100), ErrorCode.Busy);
      for (const r of releases) await r();
      await (await b.lock('many:7', Date.now() + 1_000))();
    });

    it('frees the locks of a store when it is closed', async () => {
      const [a, b] = [await open(), await open()];
      await a.lock('volume:3', Date.now() + 1_000);
      await a.close();
      const r = await within(2_000, b.lock('volume:3', Date.now() + 1_500), 'lock after close');
      await r();
    });

    it('loses nothing when the server ends the holding connection: the lock is free, release is quiet', async () => {
      const [a, b] = [await open(), await open()];
      const release = await a.lock('volume:4', Date.now() + 1_000);
      await rejectsWith(b.lock('volume:4', Date.now() + 50), ErrorCode.Busy);
      // End every connection of the database but the admin's: the holder's among them.
      if (kind === 'postgres') {
        await db.admin.query(
          'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
        );
      } else {
        const ids = await db.admin.query<{ id: number }>(
          'select id from information_schema.processlist where db = database() and id <> connection_id()',
        );
        for (const { id } of ids) await db.admin.query(`kill ${Number(id)}`);
      }
      await sleep(200);
      const r = await within(
        3_000,
        b.lock('volume:4', Date.now() + 2_000),
        'lock after the holder was cut off',
      );
      await release(); // the holder's connection is gone: releasing must not throw
      await r();
    });
  });
}

describe('loading the database clients', () => {
  it('loads pg and mysql2 only when a PostgreSQL or MySQL state URL is used', {
    timeout: 30_000,
  }, async () => {
    const pg = await createTestDatabase('postgres');
    const my = await createTestDatabase('mysql');
    const child = spawnChild('loaded-modules', ['memory:', 'sqlite::memory:', pg.url, my.url]);
    const lines: Array<{ step: string; loaded: string[] }> = [];
    for (const step of ['imported', 'memory:', 'sqlite::memory:', pg.url, my.url]) {
      const line = await child.line((l) => l.includes(`"step":${JSON.stringify(step)}`));
      lines.push(JSON.parse(line));
    }
    assert.deepEqual(
      lines.map((l) => l.loaded),
      [[], [], [], ['pg'], ['pg', 'mysql2']],
    );
    assert.equal((await child.exited).code, 0);
  });
});
