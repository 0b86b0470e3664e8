/** The first run of a new user, help, and the shape of JSON output and errors. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jsonError, Sandbox } from './harness.js';

describe('cairn CLI basics', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create();
  });
  after(async () => {
    await sb?.cleanup();
  });

  it('--help and usage errors work without creating any state', async () => {
    for (const args of [
      ['--help'],
      ['volume', '--help'],
      ['volume', 'create', '--help'],
      ['snapshot', 'restore', '--help'],
      ['state', 'dump', '--help'],
    ]) {
      const r = await sb.run(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: cairn/);
    }
    const top = await sb.run(['--help']);
    assert.match(top.stdout, /Exit codes:/);
    assert.match(top.stdout, /CAIRN_STATE/);
    const usage = await sb.run(['volume', 'create']); // --size missing
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(usage.stderr, /^cairn: required option '--size <size>' not specified/);
    await sb.fails(['volume'], 2); // a missing subcommand is a usage error
    await sb.fails(['bogus'], 2);
    assert.equal(existsSync(join(sb.dir, 'data')), false, 'help must not create the data directory');
  });

  it('--version prints the package version', async () => {
    assert.match(await sb.ok(['--version']), /^\d+\.\d+\.\d+/);
  });

  it('zero-config: the first create just works, under the data directory', async () => {
    const created = await sb.ok(['volume', 'create', '--size', '1GiB', '--name', 'first']);
    assert.match(created, /^name:\s+first$/m);
    assert.match(created, /^size:\s+1 GiB \(1073741824\)$/m);
    assert.match(created, /^backend:\s+default$/m);

    const list = await sb.ok(['volume', 'list']);
    const lines = list.trim().split('\n');
    assert.match(lines[0]!, /^ID\s+NAME\s+SIZE\s+STATUS\s+ATTACH\s+BACKEND$/);
    assert.equal(lines.length, 2);
    assert.match(lines[1]!, /\bfirst\s+1 GiB\s+available\s+detached\s+default$/);

    const [vol] = await sb.json<Array<{ id: string }>>(['volume', 'list']);
    const file = join(sb.dataDir, 'volumes', `volume-${vol!.id}`);
    assert.equal((await stat(file)).size, 1073741824, 'the volume is a file in the default pool');
    assert.ok(existsSync(join(sb.dataDir, 'cairn.db')), 'state is kept in the data directory');
  });

  it('--json results parse and carry the record fields, before or after the subcommand', async () => {
    const vol = await sb.json([
      'volume',
      'create',
      '--size',
      '512MiB',
      '--name',
      'j1',
      '--metadata',
      'app=pg',
    ]);
    assert.equal(vol.kind, 'volume');
    assert.equal(vol.name, 'j1');
    assert.equal(vol.size, 512 * 1024 * 1024);
    assert.equal(vol.status, 'available');
    assert.equal(vol.attachStatus, 'detached');
    assert.equal(vol.backend, 'default');
    assert.deepEqual(vol.metadata, { app: 'pg' });
    assert.match(String(vol.id), /^[0-9a-f-]{36}$/);

    const after = JSON.parse(await sb.ok(['volume', 'show', 'j1', '--json']));
    assert.deepEqual(after, vol);

    const list = await sb.json<unknown[]>(['volume', 'list', '--name', 'j1']);
    assert.deepEqual(list, [vol]);
  });

  it('--json errors go to stderr as {"error":{code,message}}, usage errors included', async () => {
    const missing = await sb.run(['--json', 'volume', 'show', 'nope']);
    assert.equal(missing.code, 3, missing.stderr);
    assert.equal(missing.stdout, '');
    assert.equal(jsonError(missing.stderr).code, 'NOT_FOUND');
    assert.match(jsonError(missing.stderr).message, /nope/);

    const usage = await sb.run(['--json', 'volume', 'create', '--metadata', 'novalue', '--size', '1M']);
    assert.equal(usage.code, 2, usage.stderr);
    assert.deepEqual(Object.keys(JSON.parse(usage.stderr.trim())), ['error']);
    assert.equal(jsonError(usage.stderr).code, 'INVALID_ARGUMENT');
    assert.match(jsonError(usage.stderr).message, /--metadata/);
  });

  it('human errors are one "cairn: " line without a stack trace; CAIRN_DEBUG=1 adds it', async () => {
    const r = await sb.run(['volume', 'show', 'nope']);
    assert.equal(r.stderr, 'cairn: volume "nope" not found\n');
    const debug = await sb.run(['volume', 'show', 'nope'], { env: { CAIRN_DEBUG: '1' } });
    assert.match(debug.stderr, /^cairn: volume "nope" not found\n/);
    assert.match(debug.stderr, /\n\s+at /, 'debug output has a stack trace');
  });

  it('host connector needs no state and describes this host', async () => {
    const fresh = await Sandbox.create();
    try {
      const c = await fresh.json(['host', 'connector', '--multipath']);
      assert.equal(typeof c.host, 'string');
      assert.equal(c.multipath, true);
      assert.equal(c.osType, 'linux');
      assert.equal(existsSync(join(fresh.dir, 'data')), false);
    } finally {
      await fresh.cleanup();
    }
  });
});
