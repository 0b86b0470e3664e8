/** `cairn state dump` / `state load`: a dump loaded into a fresh state reproduces every object. */
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from './harness.js';

interface Dump {
  format: string;
  version: number;
  backends: Record<string, Record<string, unknown>>;
  volumes: Array<{ id: string; name: string | null }>;
  snapshots: Array<{ id: string }>;
  connections: Array<{ id: string; info: { data: Record<string, unknown> } }>;
  keyValues: Record<string, string>;
}

describe('cairn state', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create();
    await sb.ok(['volume', 'create', '--size', '4MiB', '--name', 'one', '--metadata', 'k=v']);
    await sb.ok(['volume', 'create', '--size', '2MiB', '--name', 'two']);
    await sb.ok(['snapshot', 'create', 'one', '--name', 'snap']);
    await sb.ok(['volume', 'connect', 'two']);
  });
  after(async () => {
    await sb?.cleanup();
  });

  it('dump writes JSON to stdout, or to a file with mode 0600', async () => {
    const dump = JSON.parse(await sb.ok(['state', 'dump'])) as Dump;
    assert.equal(dump.format, 'cairn-state');
    assert.deepEqual(
      dump.volumes.map((v) => v.name),
      ['one', 'two'],
    );
    assert.equal(dump.snapshots.length, 1);
    assert.equal(dump.connections.length, 1);
    assert.deepEqual(Object.keys(dump.backends), ['default']);

    const file = join(sb.dir, 'dump.json');
    const msg = await sb.ok(['state', 'dump', '--output', file]);
    assert.match(msg, /wrote 2 volumes, 1 snapshot and 1 connection to /);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), dump);
    const json = await sb.json(['state', 'dump', '--output', file]);
    assert.deepEqual(json, { output: file, volumes: 2, snapshots: 1, connections: 1 });
  });

  it('load into a fresh state reproduces the same objects', async () => {
    const original = JSON.parse(await sb.ok(['state', 'dump'])) as Dump;
    const file = join(sb.dir, 'dump.json');
    const fresh = { CAIRN_STATE: `sqlite:${join(sb.dir, 'fresh.db')}` };
    assert.deepEqual(await sb.json(['volume', 'list'], { env: fresh }), []);

    const out = await sb.ok(['state', 'load', file], { env: fresh });
    assert.match(out, /^loaded 2 volumes, 1 snapshot and 1 connection into sqlite:/);
    const reloaded = JSON.parse(await sb.ok(['state', 'dump'], { env: fresh })) as Dump;
    assert.deepEqual(reloaded, original);
    assert.deepEqual(
      await sb.json(['volume', 'show', 'one'], { env: fresh }),
      await sb.json(['volume', 'show', 'one']),
    );

    // And from stdin, into a third store; --json lists the ids loaded.
    const third = { CAIRN_STATE: `sqlite:${join(sb.dir, 'third.db')}` };
    const ids = await sb.json(['state', 'load', '-'], { env: third, input: await readFile(file, 'utf8') });
    assert.deepEqual(ids, {
      volumes: original.volumes.map((v) => v.id),
      snapshots: original.snapshots.map((s) => s.id),
      connections: original.connections.map((c) => c.id),
    });
  });

  it('secrets stay out of a dump unless --include-secrets', async () => {
    const dump = JSON.parse(await sb.ok(['state', 'dump'])) as Dump;
    dump.connections[0]!.info.data.authPassword = 's3cret-value';
    const env = { CAIRN_STATE: `sqlite:${join(sb.dir, 'secrets.db')}` };
    await sb.ok(['state', 'load', '-'], { env, input: JSON.stringify(dump) });
    const plain = await sb.ok(['state', 'dump'], { env });
    assert.doesNotMatch(plain, /s3cret-value/);
    const withSecrets = JSON.parse(await sb.ok(['state', 'dump', '--include-secrets'], { env })) as Dump;
    assert.equal(withSecrets.connections[0]!.info.data.authPassword, 's3cret-value');
    for (const args of [
      ['volume', 'show', 'two'],
      ['--json', 'volume', 'show', 'two'],
      ['volume', 'list'],
    ]) {
      assert.doesNotMatch(await sb.ok(args, { env }), /s3cret-value/);
    }
  });

  it('load refuses a file that is not a dump, naming the problem, and writes nothing', async () => {
    const env = { CAIRN_STATE: `sqlite:${join(sb.dir, 'refused.db')}` };
    const notJson = await sb.run(['state', 'load', '-'], { env, input: 'hello' });
    assert.equal(notJson.code, 2, notJson.stderr);
    assert.match(notJson.stderr, /not JSON/);
    const wrong = await sb.run(['state', 'load', '-'], { env, input: JSON.stringify({ format: 'other' }) });
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /format/);
    const missing = await sb.run(['state', 'load', join(sb.dir, 'nope.json')], { env });
    assert.equal(missing.code, 2, missing.stderr);
    assert.deepEqual(await sb.json(['volume', 'list'], { env }), []);
  });

  it('load warns about objects on backends that are not configured', async () => {
    const dump = JSON.parse(await sb.ok(['state', 'dump'])) as Dump & {
      volumes: Array<{ backend: string; name: string | null; id: string }>;
    };
    const orphan = { ...dump.volumes[1]!, id: 'orphan-1', name: 'orphan', backend: 'gone' };
    const input = JSON.stringify({ ...dump, volumes: [orphan], snapshots: [], connections: [] });
    const env = { CAIRN_STATE: `sqlite:${join(sb.dir, 'orphan.db')}` };
    const r = await sb.run(['state', 'load', '-'], { env, input });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /backend "gone" .* not configured/);
    const del = await sb.run(['volume', 'delete', 'orphan'], { env });
    assert.equal(del.code, 3, del.stderr);
    assert.match(del.stderr, /on backend "gone", which is not configured/);
  });
});
