/** Database state URLs: what they say, and how a bad one is refused (never showing the password). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cairn, ErrorCode } from '../../src/index.js';
import { maskUrl, parseServerUrl } from '../../src/state/url.js';
import { rejectsWith, throwsWith } from '../harness/assert.js';

describe('database state URLs', () => {
  it('reads user, password, host, port, database and parameters', () => {
    assert.deepEqual(
      parseServerUrl('postgres://me:s3cret@db.example:6543/cairn?connectTimeoutMs=250&poolSize=4'),
      {
        kind: 'postgres',
        host: 'db.example',
        port: 6543,
        user: 'me',
        password: 's3cret',
        database: 'cairn',
        connectTimeoutMs: 250,
        poolSize: 4,
        location: 'postgres://me:***@db.example:6543/cairn',
      },
    );
    const my = parseServerUrl('mariadb://root@127.0.0.1/state');
    assert.equal(my.kind, 'mysql');
    assert.equal(my.port, 3306, 'default port');
    assert.equal(my.password, undefined);
    assert.equal(my.connectTimeoutMs, 5_000, 'default connect timeout');
    assert.equal(my.location, 'mariadb://root@127.0.0.1:3306/state');
    assert.equal(parseServerUrl('POSTGRESQL://h/d').kind, 'postgres');
    assert.equal(parseServerUrl('postgresql://h/d').port, 5432);
    assert.equal(parseServerUrl('mysql://h/d').user, undefined, 'no user: the client library decides');
    const v6 = parseServerUrl('postgres://u@[::1]:5433/d');
    assert.equal(v6.host, '::1');
    assert.equal(v6.location, 'postgres://u@[::1]:5433/d');
  });

  it('decodes percent-encoded user, password and database', () => {
    const t = parseServerUrl(
      `mysql://${encodeURIComponent('us@r')}:${encodeURIComponent('p@ss/w:rd#?%')}@h/${encodeURIComponent('my db')}`,
    );
    assert.equal(t.user, 'us@r');
    assert.equal(t.password, 'p@ss/w:rd#?%');
    assert.equal(t.database, 'my db');
    assert.ok(!t.location.includes('p%40ss') && !t.location.includes('p@ss'));
    // An unencoded "@" in the password still splits at the last "@", like WHATWG URLs.
    assert.equal(parseServerUrl('postgres://u:p@ss@h/d').password, 'p@ss');
  });

  const bad: Array<[url: string, ...mentions: string[]]> = [
    ['postgres://u:SECRETPW@/db', 'no host'],
    ['postgres://u:SECRETPW@h:99999/db', 'port', '1 to 65535'],
    ['postgres://u:SECRETPW@h:0/db', 'port'],
    ['postgres://u:SECRETPW@h:x1/db', 'port'],
    // An unencoded "/" in the password: the rest of it must not show up as a "port".
    ['postgres://u:SECR/ETPW@h/db', 'percent-encoded'],
    ['mysql://u:SECRETPW@h', 'no database name'],
    ['mysql://u:SECRETPW@h/', 'no database name'],
    ['mysql://u:SECRETPW@h/a/b', 'contains "/"'],
    ['mysql://u:SECRETPW@h/%zz', 'database name has bad %-encoding'],
    ['mysql://u:SECRETPW%zz@h/d', 'password has bad %-encoding'],
    [
      'postgres://u:SECRETPW@h/db?sslmode=require',
      'unknown parameter "sslmode"',
      'connectTimeoutMs, poolSize',
    ],
    ['postgres://u:SECRETPW@h/db?toString=1', 'unknown parameter "toString"'],
    ['postgres://u:SECRETPW@h/db?password=SECRETPW', 'unknown parameter "password"'],
    ['postgres://u:SECRETPW@h/db?connectTimeoutMs=0', 'connectTimeoutMs', '1 to 600000'],
    ['postgres://u:SECRETPW@h/db?connectTimeoutMs=1e3', 'connectTimeoutMs'],
    ['postgres://u:SECRETPW@h/db?connectTimeoutMs=', 'connectTimeoutMs'],
    ['postgres://u:SECRETPW@h/db?poolSize=0', 'poolSize'],
    ['postgres://u:SECRETPW@h/db?poolSize=2&poolSize=3', 'given twice'],
    ['postgres://u:SECRETPW@h/db#frag', 'fragment'],
    ['postgres://u:SECRETPW@h o/db', 'host'],
    ['postgres:u:SECRETPW@h/db', 'SCHEME://'],
  ];
  for (const [url, ...mentions] of bad) {
    it(`refuses ${JSON.stringify(url)}, saying what is wrong and masking the password`, async () => {
      const err = throwsWith(() => parseServerUrl(url), ErrorCode.InvalidArgument, ...mentions);
      assert.ok(!/SECR|ETPW/.test(err.message), err.message);
      assert.ok(err.message.includes('u:***@') || !url.includes('@'), err.message);
      // Cairn.open refuses it the same way, before loading any client library.
      const viaOpen = await rejectsWith(Cairn.open({ state: url }), ErrorCode.InvalidArgument);
      assert.ok(!/SECR|ETPW/.test(viaOpen.message), viaOpen.message);
    });
  }

  it('masks the password of an unknown kind of URL too', async () => {
    const err = await rejectsWith(
      Cairn.open({ state: 'redis://u:SECRETPW@h/0' }),
      ErrorCode.InvalidArgument,
      'redis://u:***@h/0',
      'postgres://',
    );
    assert.ok(!err.message.includes('SECRETPW'));
  });

  it('masks everything up to the last "@", query values and fragments', () => {
    assert.equal(maskUrl('postgres://u:a@b/c@h/d'), 'postgres://u:***@h/d');
    assert.equal(maskUrl('postgres://u@h/d'), 'postgres://u@h/d');
    assert.equal(maskUrl('postgres://h/d'), 'postgres://h/d');
    assert.equal(maskUrl('not a url'), 'not a url');
    assert.equal(
      maskUrl('postgres://u:pw@h/d?poolSize=3&sslpassword=pw2&flag#frag'),
      'postgres://u:***@h/d?poolSize=3&sslpassword=***&flag#***',
      "query values other than Cairn's own are masked, and the fragment",
    );
  });
});
