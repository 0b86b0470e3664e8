import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Sqlite from 'better-sqlite3';
import { Cairn, ErrorCode } from '../../src/index.js';
import { rejectsWith } from '../harness/assert.js';
import { type Child, jsonLine, killChildren, spawnChild } from '../harness/children.js';
import { volumeRecord } from '../harness/records.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

let dir: TempDir;
before(async () => {
  dir = await tempDir('cairn-sqlite-');
});
after(async () => {
  killChildren();
  await dir.cleanup();
});

let n = 0;
const newFile = () => join(dir.path, `case-${++n}`, 'state.db');

/** Asserts that opening `file` is refused and leaves the file, and its directory, as they were. */
async function refusedUntouched(file: string, ...mentions: string[]): Promise<void> {
  const bytes = await readFile(file);
  const folder = join(file, '..');
  const listing = await readdir(folder);
  await rejectsWith(Cairn.open({ state: `sqlite:${file}` }), ErrorCode.StateStoreFailure, ...mentions);
  assert.ok((await readFile(file)).equals(bytes), 'the file is byte-identical');
  assert.deepEqual(await readdir(folder), listing, 'no journal, WAL or other file was created');
}

async function makeDir(file: string) {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(file, '..'), { recursive: true });
}

describe('SQLite state file', () => {
  it('refuses a file of random bytes and leaves it alone', async () => {
    const file = newFile();
    await makeDir(file);
    await writeFile(file, randomBytes(64 * 1024));
    await refusedUntouched(file);
  });

  it('refuses a file with a SQLite header and garbage after it', async () => {
    const file = newFile();
    await makeDir(file);
    await writeFile(file, Buffer.concat([Buffer.from('SQLite format 3\0'), randomBytes(8192)]));
    await refusedUntouched(file);
  });

  it("refuses another application's SQLite database and leaves it byte-identical", async () => {
    const file = newFile();
    await makeDir(file);
    const other = new Sqlite(file);
    other.exec(
      "create table users (id integer primary key, name text); insert into users (name) values ('ann')",
    );
    other.close();
    await refusedUntouched(file, 'users');
    const again = new Sqlite(file, { readonly: true });
    assert.deepEqual(again.prepare('select name from users').all(), [{ name: 'ann' }]);
    again.close();
  });

  it('refuses a schema from a newer Cairn and leaves it byte-identical', async () => {
    const file = newFile();
    const cairn = await Cairn.open({ state: `sqlite:${file}` });
    await cairn.store.put(volumeRecord({ name: 'kept' }));
    await cairn.close();
    const raw = new Sqlite(file);
    raw
      .prepare('insert into cairn_migration (name, timestamp) values (?, ?)')
      .run('9999_from_the_future', new Date().toISOString());
    raw.close();
    await refusedUntouched(file, '9999_from_the_future');
    const back = new Sqlite(file, { readonly: true });
    assert.deepEqual(back.prepare('select name from cairn_objects').all(), [{ name: 'kept' }]);
    back.close();
  });

  it('creates the state file with mode 0600 (and its directory 0700) whatever the umask', async () => {
    const file = newFile();
    const old = process.umask(0);
    let cairn: Cairn;
    try {
      cairn = await Cairn.open({ state: `sqlite:${file}` });
    } finally {
      process.umask(old);
    }
    await cairn.store.setKV('k', 'v');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(file, '..'))).mode & 0o777, 0o700);
    for (const side of ['-wal', '-shm']) {
      const s = await stat(`${file}${side}`).catch(() => null);
      if (s) assert.equal(s.mode & 0o077, 0, `${side} is private too`);
    }
    await cairn.close();
  });

  it('keeps what was written across close and reopen', async () => {
    const file = newFile();
    const first = await Cairn.open({ state: `sqlite:${file}` });
    const rec = await first.store.put(volumeRecord({ name: 'persisted', size: Number.MAX_SAFE_INTEGER }));
    await first.store.setKV('key', 'value');
    await first.close();
    const second = await Cairn.open({ state: `sqlite:${file}` });
    assert.deepEqual(await second.store.get('volume', rec.id), rec);
    assert.equal(await second.store.getKV('key'), 'value');
    await second.close();
  });

  it('lets two processes open the same new state file at once; migrations run once', {
    timeout: 30_000,
  }, async () => {
    const file = newFile();
    const children: Child[] = [spawnChild('open-state', [file]), spawnChild('open-state', [file])];
    await Promise.all(children.map((c) => jsonLine(c, 'ready')));
    for (const c of children) c.send('go');
    const results = await Promise.all(children.map((c) => jsonLine<{ result: string }>(c, 'result')));
    const exits = await Promise.all(children.map((c) => c.exited));
    assert.deepEqual(
      results.map((r) => r.result),
      ['ok', 'ok'],
      JSON.stringify(results),
    );
    assert.deepEqual(
      exits.map((e) => e.code),
      [0, 0],
    );
    const db = new Sqlite(file, { readonly: true });
    const migrations = db.prepare('select name from cairn_migration').all() as Array<{ name: string }>;
    const keys = db.prepare("select kv_key from cairn_kv where kv_key like 'opened-by-%'").all();
    db.close();
    assert.deepEqual(
      migrations.map((m) => m.name),
      ['0001_objects'],
      'each migration is recorded once',
    );
    assert.equal(keys.length, 2, 'both processes wrote to the store');
  });
});
