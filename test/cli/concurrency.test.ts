/** Several CLI processes at once: names stay unique, the state store stays consistent. */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from './harness.js';

describe('cairn from several processes at once', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await Sandbox.create();
  });
  after(async () => {
    await sb?.cleanup();
  });

  it('two processes creating the same name: exactly one succeeds, the other exits 4', async () => {
    // The first round also races on creating the state store itself.
    for (const name of ['same-1', 'same-2', 'same-3']) {
      const results = await Promise.all([
        sb.run(['volume', 'create', '--size', '1MiB', '--name', name]),
        sb.run(['volume', 'create', '--size', '1MiB', '--name', name]),
      ]);
      const codes = results.map((r) => r.code).sort();
      assert.deepEqual(codes, [0, 4], results.map((r) => r.stderr).join('\n'));
      const loser = results.find((r) => r.code === 4)!;
      assert.match(loser.stderr, new RegExp(`a volume named "${name}" already exists`));
      assert.equal((await sb.json<unknown[]>(['volume', 'list', '--name', name])).length, 1);
    }
    const files = (await readdir(join(sb.dataDir, 'volumes'))).filter((f) => f.startsWith('volume-'));
    assert.equal(files.length, 3, 'the loser left no file behind');
  });

  it('different names in parallel all succeed', async () => {
    const results = await Promise.all(
      [1, 2, 3, 4].map((i) => sb.run(['volume', 'create', '--size', '1MiB', '--name', `p${i}`])),
    );
    assert.deepEqual(
      results.map((r) => r.code),
      [0, 0, 0, 0],
      results.map((r) => r.stderr).join('\n'),
    );
    assert.equal((await sb.json<unknown[]>(['volume', 'list'])).length, 7);
  });
});
