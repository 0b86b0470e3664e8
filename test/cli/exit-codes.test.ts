/** Every class of failure gives its documented exit code, from the real binary. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { lockKey } from '../../src/core/engine.js';
import { LockManager } from '../../src/core/locks.js';
import { ErrorCode } from '../../src/util/errors.js';
import { jsonError, Sandbox } from './harness.js';

describe('cairn exit codes', () => {
  let sb: Sandbox;
  let id: string;
  before(async () => {
    sb = await Sandbox.create();
    id = (await sb.json<{ id: string }>(['volume', 'create', '--size', '1MiB', '--name', 'taken'])).id;
  });
  after(async () => {
    await sb?.cleanup();
  });

  it('maps every library error code, as the table in exit-codes.ts says', () => {
    const expected: Record<string, number> = {
      INTERNAL: 1,
      INVALID_ARGUMENT: 2,
      NOT_FOUND: 3,
      ALREADY_EXISTS: 4,
      INVALID_STATE: 5,
      BACKEND_FAILURE: 6,
      BUSY: 7,
      TIMEOUT: 7,
      CONFLICT: 7,
      UNSUPPORTED: 8,
      INSUFFICIENT_CAPACITY: 9,
      STATE_STORE_FAILURE: 10,
    };
    assert.deepEqual(Object.values(ErrorCode).sort(), Object.keys(expected).sort());
    for (const [code, exit] of Object.entries(expected)) assert.equal(exitCodeFor(code), exit, code);
    assert.equal(exitCodeFor('SOMETHING_NEW'), 1);
  });

  const expectExit = async (
    args: string[],
    exit: number,
    code: string,
    opts: { env?: Record<string, string> } = {},
  ) => {
    const r = await sb.run(['--json', ...args], opts);
    assert.equal(r.code, exit, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(jsonError(r.stderr).code, code);
    const human = await sb.run(args, opts);
    assert.equal(human.code, exit);
    assert.match(human.stderr, /^cairn: /);
    assert.doesNotMatch(human.stderr, /\n\s+at /, 'no stack trace');
  };

  it('2: a bad size, or a bad command line', async () => {
    await expectExit(['volume', 'create', '--size', 'ten gigs'], 2, 'INVALID_ARGUMENT');
    await expectExit(['volume', 'create', '--size', '0'], 2, 'INVALID_ARGUMENT');
    await expectExit(['volume', 'extend', 'taken', '0'], 2, 'INVALID_ARGUMENT');
    await expectExit(['volume', 'create', '--size', '1M', '--name', 'bad/name'], 2, 'INVALID_ARGUMENT');
    await expectExit(['volume', 'create', '--size', '1M', '--nope'], 2, 'INVALID_ARGUMENT');
    await expectExit(['volume', 'show'], 2, 'INVALID_ARGUMENT');
  });

  it('3: an unknown volume or snapshot', async () => {
    await expectExit(['volume', 'show', 'nope'], 3, 'NOT_FOUND');
    await expectExit(['volume', 'delete', 'nope'], 3, 'NOT_FOUND');
    await expectExit(['snapshot', 'restore', 'nope'], 3, 'NOT_FOUND');
  });

  it('4: a duplicate name or id', async () => {
    await expectExit(['volume', 'create', '--size', '1M', '--name', 'taken'], 4, 'ALREADY_EXISTS');
    await expectExit(['volume', 'create', '--size', '1M', '--id', id], 4, 'ALREADY_EXISTS');
  });

  it('5: deleting a volume that has snapshots', async () => {
    await sb.ok(['snapshot', 'create', 'taken', '--name', 'pin']);
    await expectExit(['volume', 'delete', 'taken'], 5, 'INVALID_STATE');
    await sb.ok(['snapshot', 'delete', 'pin']);
  });

  it('6: a backend failure (a root helper that fails every command), leaving nothing behind', async () => {
    const config = await sb.file(
      'failing.yaml',
      `rootHelper: /bin/false\nstate: sqlite:${join(sb.dataDir, 'cairn.db')}\nbackends:\n  default: { driver: file, path: ${join(sb.dataDir, 'volumes')} }\n`,
    );
    await expectExit(['--config', config, 'volume', 'attach', 'taken'], 6, 'BACKEND_FAILURE');
    const vol = await sb.json<{ status: string; attachStatus: string }>(['volume', 'show', 'taken']);
    assert.equal(vol.status, 'available');
    assert.equal(vol.attachStatus, 'detached');
  });

  it('7: a volume locked by another process past the lock timeout', async () => {
    const lockDir = join(sb.dir, 'locks');
    const config = await sb.file(
      'busy.yaml',
      `lockDir: ${lockDir}\nlockTimeoutMs: 300\nstate: sqlite:${join(sb.dataDir, 'cairn.db')}\nbackends:\n  default: { driver: file, path: ${join(sb.dataDir, 'volumes')} }\n`,
    );
    const locks = new LockManager({ dir: lockDir });
    await locks.withLocks([lockKey('volume', id)], () =>
      expectExit(['--config', config, 'volume', 'extend', 'taken', '2MiB'], 7, 'BUSY'),
    );
    assert.equal(
      (await sb.json<{ size: number }>(['--config', config, 'volume', 'extend', 'taken', '2MiB'])).size,
      2 * 1024 * 1024,
    );
  });

  it('8: something the backend does not support', async () => {
    await expectExit(['volume', 'create', '--size', '1M', '--multiattach'], 8, 'UNSUPPORTED');
  });

  it('9: more than a thick backend has free', async () => {
    const config = await sb.file(
      'thick.yaml',
      `state: "memory:"\nbackends:\n  thick: { driver: file, path: ${join(sb.dir, 'thick')}, provisioning: thick }\n`,
    );
    await expectExit(['--config', config, 'volume', 'create', '--size', '1PiB'], 9, 'INSUFFICIENT_CAPACITY');
  });

  it('10: a state store that is not a Cairn store', async () => {
    const file = await sb.file('text.db', 'x'.repeat(4096));
    await expectExit(['volume', 'list'], 10, 'STATE_STORE_FAILURE', {
      env: { CAIRN_STATE: `sqlite:${file}` },
    });
  });
});
