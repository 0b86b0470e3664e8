/** Configuration files, environment overrides, and the backend commands that show the result. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jsonError, Sandbox } from './harness.js';

interface Vol {
  id: string;
  backend: string;
}

describe('cairn configuration', () => {
  let sb: Sandbox;
  let config: string;
  before(async () => {
    sb = await Sandbox.create();
    // A relative state path is relative to the config file, not to the working directory.
    config = await sb.file(
      'cairn.yaml',
      [
        'state: sqlite:state/cairn.db',
        `lockDir: ${join(sb.dir, 'locks')}`,
        'lockTimeoutMs: 60000',
        'defaultBackend: fast',
        'backends:',
        `  fast: { driver: file, path: ${join(sb.dir, 'fast')}, provisioning: thick }`,
        `  slow: { driver: file, path: ${join(sb.dir, 'slow')}, reflink: never }`,
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    await sb?.cleanup();
  });

  it('a config file with backends: --config or CAIRN_CONFIG, defaultBackend, --backend', async () => {
    const a = await sb.json<Vol>(['--config', config, 'volume', 'create', '--size', '1MiB', '--name', 'a']);
    assert.equal(a.backend, 'fast');
    assert.ok(existsSync(join(sb.dir, 'fast', `volume-${a.id}`)));
    assert.ok(existsSync(join(sb.dir, 'state', 'cairn.db')), 'state where the file says');
    assert.equal(existsSync(join(sb.dir, 'data')), false, 'nothing in the zero-config place');

    sb.env = { CAIRN_CONFIG: config };
    const b = await sb.json<Vol>(['volume', 'create', '--size', '1MiB', '--name', 'a', '--backend', 'slow']);
    assert.equal(b.backend, 'slow', 'the same name is fine on another backend');
    const c = await sb.json<Vol>(['volume', 'create', '--size', '1MiB'], { env: { CAIRN_BACKEND: 'slow' } });
    assert.equal(c.backend, 'slow', 'CAIRN_BACKEND overrides defaultBackend');
    assert.equal((await sb.json<Vol[]>(['volume', 'list'])).length, 3);

    const ambiguous = await sb.run(['volume', 'show', 'a']);
    assert.equal(ambiguous.code, 2, `a name used on two backends needs the id: ${ambiguous.stderr}`);
    assert.match(ambiguous.stderr, /use the id/);

    const unknown = await sb.run(['volume', 'create', '--size', '1M', '--backend', 'nope']);
    assert.equal(unknown.code, 3, unknown.stderr);
    assert.match(unknown.stderr, /backend "nope" is not configured .* \(configured: fast, slow\)/);
  });

  it('CAIRN_STATE overrides the state of the file', async () => {
    const env = { CAIRN_STATE: `sqlite:${join(sb.dir, 'other.db')}` };
    assert.deepEqual(await sb.json(['volume', 'list'], { env }), []);
    assert.ok(existsSync(join(sb.dir, 'other.db')));
    assert.equal((await sb.json<Vol[]>(['volume', 'list'])).length, 3, 'the file state is untouched');
    assert.deepEqual(await sb.json(['volume', 'list'], { env: { CAIRN_STATE: 'memory:' } }), []);
  });

  it('backend list shows name, driver, default and capabilities', async () => {
    const table = (await sb.ok(['backend', 'list'])).trim().split('\n');
    assert.match(table[0]!, /^NAME\s+DRIVER\s+CAPABILITIES$/);
    assert.match(
      table[1]!,
      /^fast \(default\)\s+file\s+thick, snapshots, clone:\w+, revert, manage, online-extend, protocols:local$/,
    );
    assert.match(
      table[2]!,
      /^slow\s+file\s+thin, snapshots, clone:copy, revert, manage, online-extend, protocols:local$/,
    );
    const list = await sb.json<Array<Record<string, unknown>>>(['backend', 'list']);
    assert.deepEqual(
      list.map((b) => [b.name, b.driver, b.default]),
      [
        ['fast', 'file', true],
        ['slow', 'file', false],
      ],
    );
    assert.equal((list[0]!.capabilities as { thin: boolean }).thin, false);
    assert.deepEqual(list[1]!.config, {
      driver: 'file',
      path: join(sb.dir, 'slow'),
      provisioning: 'thin',
      reflink: 'never',
    });
  });

  it('backend stats shows capacity and counts, of one backend or all', async () => {
    const one = await sb.json<Record<string, unknown>>(['backend', 'stats', 'fast']);
    assert.equal(one.backend, 'fast');
    assert.equal(one.thin, false);
    assert.equal(one.volumeCount, 1);
    assert.equal(one.snapshotCount, 0);
    assert.equal(one.provisionedBytes, 1024 * 1024);
    assert.ok((one.totalBytes as number) >= (one.freeBytes as number));
    assert.equal(typeof one.allocatedBytes, 'number');
    const all = await sb.json<Array<Record<string, unknown>>>(['backend', 'stats']);
    assert.deepEqual(
      all.map((s) => [s.backend, s.volumeCount]),
      [
        ['fast', 1],
        ['slow', 2],
      ],
    );
    const table = (await sb.ok(['backend', 'stats'])).trim().split('\n');
    assert.match(
      table[0]!,
      /^BACKEND\s+TOTAL\s+FREE\s+PROVISIONED\s+ALLOCATED\s+PROVISIONING\s+VOLUMES\s+SNAPSHOTS$/,
    );
    assert.match(table[1]!, /^fast\s+.*\s1 MiB\s.*\sthick\s+1\s+0$/);
    assert.match(table[2]!, /^slow\s+.*\s2 MiB\s.*\sthin\s+2\s+0$/);
    await sb.fails(['backend', 'stats', 'nope'], 3);
  });

  it('zero-config: no file and no environment means one "default" file backend', async () => {
    const fresh = await Sandbox.create();
    try {
      const [b] = await fresh.json<Array<{ name: string; config: { path: string } }>>(['backend', 'list']);
      assert.equal(b!.name, 'default');
      assert.equal(b!.config.path, join(fresh.dataDir, 'volumes'));
    } finally {
      await fresh.cleanup();
    }
  });

  describe('errors', () => {
    const bad = async (name: string, yaml: string, args = ['volume', 'list']) => {
      const file = await sb.file(name, yaml);
      return sb.run(['--config', file, ...args], { env: { CAIRN_CONFIG: '' } });
    };

    it('an unknown field exits 2 and names it', async () => {
      const r = await bad('unknown.yaml', 'state: "memory:"\nbakends: {}\n');
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /unknown\.yaml/);
      assert.match(r.stderr, /unknown field: bakends/);
    });

    it('a wrong value names the field path, the value and what is allowed', async () => {
      const r = await bad('wrong.yaml', 'lockTimeoutMs: soon\nbackends:\n  a: { path: /x }\n');
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /lockTimeoutMs: .*expected number.*got "soon"/);
      assert.match(r.stderr, /backends\.a\.driver: /);
      const d = await bad(
        'default.yaml',
        'defaultBackend: b\nbackends:\n  a: { driver: file, path: /tmp/a }\n',
      );
      assert.equal(d.code, 2, d.stderr);
      assert.match(d.stderr, /defaultBackend: must name one of the configured backends \(a\); got "b"/);
    });

    it('an unknown driver exits 2 naming the backend', async () => {
      const yaml = 'state: "memory:"\nbackends:\n  x: { driver: nosuch }\n';
      const r = await bad('driver.yaml', yaml, ['volume', 'create', '--size', '1M']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /backends\.x: driver: unknown driver "nosuch"/);
      const list = await bad('driver.yaml', yaml, ['--json', 'backend', 'list']);
      assert.equal(list.code, 2, `backend list shows the broken backend, then fails: ${list.stderr}`);
      const [entry] = JSON.parse(list.stdout) as Array<{ name: string; error: { code: string } }>;
      assert.equal(entry!.error.code, 'INVALID_ARGUMENT');
      assert.equal(jsonError(list.stderr).code, 'INVALID_ARGUMENT');
    });

    it("a backend's driver fields are checked by the driver", async () => {
      const r = await bad(
        'fields.yaml',
        'state: "memory:"\nbackends:\n  x: { driver: file, path: relative }\n',
        ['volume', 'create', '--size', '1M'],
      );
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /backends\.x: .*path: must be an absolute path; got "relative"/);
    });

    it('a missing file, a directory, or invalid YAML is a clear error', async () => {
      const missing = await sb.run(['--config', join(sb.dir, 'none.yaml'), 'volume', 'list']);
      assert.equal(missing.code, 2, missing.stderr);
      assert.match(missing.stderr, /none\.yaml: cannot read it: no such file/);
      const viaEnv = await sb.run(['volume', 'list'], { env: { CAIRN_CONFIG: join(sb.dir, 'none.yaml') } });
      assert.equal(viaEnv.code, 2, viaEnv.stderr);
      const dir = await sb.run(['--config', sb.dir, 'volume', 'list']);
      assert.equal(dir.code, 2, dir.stderr);
      assert.match(dir.stderr, /is a directory/);
      const yaml = await bad('broken.yaml', 'backends: [\n');
      assert.equal(yaml.code, 2, yaml.stderr);
      assert.match(yaml.stderr, /invalid YAML/);
      const colon = await bad('colon.yaml', 'state: memory:\n');
      assert.match(colon.stderr, /hint: quote a value that ends with ":"/);
    });

    it('a state store that cannot be reached exits 10, and so does a file that is not SQLite', async () => {
      const pg = await sb.run(['volume', 'list'], { env: { CAIRN_STATE: 'postgres://u@127.0.0.1:1/db' } });
      assert.equal(pg.code, 10, pg.stderr);
      assert.match(pg.stderr, /127\.0\.0\.1:1/);
      const notDb = await sb.file(
        'not-a-db',
        'this is not sqlite, just text long enough to have a header......',
      );
      const r = await sb.run(['volume', 'list'], { env: { CAIRN_STATE: `sqlite:${notDb}` } });
      assert.equal(r.code, 10, r.stderr);
    });
  });
});
