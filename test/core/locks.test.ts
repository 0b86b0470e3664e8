import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '../../src/core/locks.js';
import { Cairn, ErrorCode } from '../../src/index.js';
import { rejectsWith } from '../harness/assert.js';
import { jsonLine, killChildren, spawnChild } from '../harness/children.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

let dir: TempDir;
before(async () => {
  dir = await tempDir('cairn-locks-');
});
after(async () => {
  killChildren();
  await dir.cleanup();
});
let n = 0;
const lockDir = () => join(dir.path, `locks-${++n}`);

/** Rejects after `ms`: a guard for cases that would otherwise hang when broken. */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('locks in one process', () => {
  it('runs holders of the same key one at a time, in call order', async () => {
    const locks = new LockManager({ dir: lockDir() });
    let active = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        locks.withLocks(['k'], async () => {
          active++;
          most = Math.max(most, active);
          await sleep(5);
          order.push(i);
          active--;
        }),
      ),
    );
    assert.equal(most, 1);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
  });

  it('runs holders of different keys at the same time', async () => {
    const locks = new LockManager({ dir: lockDir() });
    let entered = 0;
    let bothIn!: () => void;
    const together = new Promise<void>((resolve) => {
      bothIn = resolve;
    });
    const holder = (key: string) =>
      locks.withLocks([key], async () => {
        if (++entered === 2) bothIn();
        await together; // only returns once the other key's holder is inside too
      });
    await within(5_000, Promise.all([holder('a'), holder('b')]), 'different keys');
  });

  it('takes several keys without deadlock, whatever order they are given in', async () => {
    const locks = new LockManager({ dir: lockDir() });
    const runs = Array.from({ length: 10 }, (_, i) =>
      locks.withLocks(i % 2 ? ['x', 'y', 'z'] : ['z', 'y', 'x'], () => sleep(1)),
    );
    await within(10_000, Promise.all(runs), 'multi-key locks');
  });

  it('gives up with BUSY after the timeout, and the lock works again afterwards', async () => {
    const dirPath = lockDir();
    const locks = new LockManager({ dir: dirPath });
    const other = new LockManager({ dir: dirPath }); // another context: meets the lock file
    let release!: () => void;
    const held = locks.withLocks(['k'], () => new Promise<void>((r) => (release = r)));
    await sleep(20);
    let ran = false;
    const started = Date.now();
    await rejectsWith(
      locks.withLocks(['k'], async () => (ran = true), { timeoutMs: 150 }),
      ErrorCode.Busy,
      'k',
    );
    assert.ok(Date.now() - started >= 140, 'it waited for the timeout');
    await rejectsWith(
      other.withLocks(['k'], async () => (ran = true), { timeoutMs: 150 }),
      ErrorCode.Busy,
      `pid ${process.pid}`,
    );
    assert.equal(ran, false);
    release();
    await held;
    assert.equal(
      await within(
        2_000,
        locks.withLocks(['k'], async () => 'mine'),
        'after BUSY',
      ),
      'mine',
    );
    assert.equal(
      await within(
        2_000,
        other.withLocks(['k'], async () => 'theirs'),
        'after BUSY',
      ),
      'theirs',
    );
    assert.deepEqual(await readdir(dirPath), [], 'released locks leave no files');
  });
});

describe('locks across processes', { timeout: 60_000 }, () => {
  it('breaks the lock of a holder killed with SIGKILL', async () => {
    const dirPath = lockDir();
    const child = spawnChild('hold-lock', [dirPath, 'shared']);
    await jsonLine(child, 'locked');
    const locks = new LockManager({ dir: dirPath });
    await rejectsWith(
      locks.withLocks(['shared'], async () => {}, { timeoutMs: 200 }),
      ErrorCode.Busy,
    );
    child.process.kill('SIGKILL');
    assert.equal((await child.exited).signal, 'SIGKILL');
    const started = Date.now();
    assert.equal(await locks.withLocks(['shared'], async () => 'taken', { timeoutMs: 5_000 }), 'taken');
    assert.ok(Date.now() - started < 3_000, 'the dead holder is noticed at once, not after a timeout');
  });

  it('never loses an update: two processes increment a counter 100 times each', async () => {
    const dirPath = lockDir();
    const counter = join(dir.path, `counter-${n}`);
    await writeFile(counter, '0');
    const children = [1, 2].map(() => spawnChild('count', [dirPath, 'counter', counter, '100']));
    await Promise.all(children.map((c) => jsonLine(c, 'ready')));
    for (const c of children) c.send('go');
    await Promise.all(children.map((c) => jsonLine(c, 'done', 50_000)));
    assert.deepEqual(
      (await Promise.all(children.map((c) => c.exited))).map((e) => e.code),
      [0, 0],
    );
    assert.equal(await readFile(counter, 'utf8'), '200');
  });

  it('lets exactly one of two processes create the same volume name on one SQLite state', async () => {
    const state = join(dir.path, `race-${++n}`, 'state.db');
    const pool = join(dir.path, `race-${n}`, 'pool');
    const children = [1, 2].map(() => spawnChild('create-volume', [state, pool, 'contested']));
    await Promise.all(children.map((c) => jsonLine(c, 'ready')));
    for (const c of children) c.send('go');
    const results = await Promise.all(
      children.map((c) => jsonLine<{ result: string; code?: string; id?: string }>(c, 'result')),
    );
    const ok = results.filter((r) => r.result === 'ok');
    assert.equal(ok.length, 1, JSON.stringify(results));
    assert.deepEqual(
      results.filter((r) => r.result !== 'ok').map((r) => r.code),
      [ErrorCode.AlreadyExists],
    );
    const files = (await readdir(pool)).filter((f) => f.startsWith('volume-'));
    assert.deepEqual(files, [`volume-${ok[0]!.id}`], 'one volume file');
    const cairn = await Cairn.open({ state: `sqlite:${state}` });
    assert.deepEqual(
      (await cairn.volumes({ name: 'contested' })).map((v) => v.id),
      [ok[0]!.id],
    );
    await cairn.close();
  });
});
