// The in-process librbd path (the cairn_rbd addon, through src/drivers/rbd/librbd.ts) against a
// real single-node Ceph cluster: every call, errno → CairnError mapping, clone v2 and the trash
// namespace, the RBD trash, handle life cycle and process exit, and a monitor that stops
// answering. An addon that is not built fails these tests: it is never a skip.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  errnoOf,
  featureMask,
  type LibrbdModule,
  librbdUnavailableReason,
  loadLibrbd,
  type RbdCluster,
  type RbdIoctx,
} from '../../src/drivers/rbd/librbd.js';
import { ErrorCode, isCairnError } from '../../src/util/errors.js';
import { rejectsWith } from '../harness/assert.js';
import { type CephCluster, startCeph } from '../harness/ceph.js';
import { run } from '../harness/exec.js';

const MiB = 1024 * 1024;
const OBJECT = 4 * MiB; // the default object size (order 22)
const ENOTEMPTY = 39;
const EINVAL = 22;
const EPERM = 1;
const ESHUTDOWN = 108;

/** Compiled beside dist/src: the package entry and the wrapper, for child processes. */
const distSrc = (rel: string) => fileURLToPath(new URL(`../../src/${rel}`, import.meta.url));

/** Runs an ES module snippet in a fresh node; returns its stdout, exit status and signal. */
function node(code: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
  return { out: r.stdout.trim(), err: r.stderr, status: r.status, signal: r.signal };
}

describe('librbd addon on a real Ceph cluster', () => {
  let lib: LibrbdModule;
  let ceph: CephCluster;
  let cluster: RbdCluster;
  let io: RbdIoctx;
  const cli = (...args: string[]) => run(['rbd', '-c', ceph.conf, '--pool', ceph.pool, ...args]);

  // These tests are of the addon itself: a CAIRN_RBD_NATIVE=0 meant for the driver must not hide it.
  const forced = process.env.CAIRN_RBD_NATIVE;

  before(async () => {
    delete process.env.CAIRN_RBD_NATIVE;
    const loaded = loadLibrbd();
    assert.ok(loaded, `the addon must be built for these tests: ${librbdUnavailableReason()}`);
    lib = loaded;
    ceph = await startCeph();
    cluster = await lib.connect({ conf: ceph.conf, timeoutSeconds: 10 });
    io = await cluster.openIoctx(ceph.pool);
  });

  after(async () => {
    if (forced !== undefined) process.env.CAIRN_RBD_NATIVE = forced;
    await cluster?.shutdown();
    await ceph?.stop();
  });

  it('is loaded only on demand: importing Cairn or the driver maps no librbd', () => {
    const mapped = "(await import('node:fs')).readFileSync('/proc/self/maps', 'utf8').includes('librbd.so')";
    const idle = node(
      `await import(${JSON.stringify(distSrc('index.js'))});
       await import(${JSON.stringify(distSrc('drivers/rbd/index.js'))});
       await import(${JSON.stringify(distSrc('drivers/rbd/librbd.js'))});
       console.log(${mapped});`,
    );
    assert.equal(idle.out, 'false', idle.err);
    const used = node(
      `const m = await import(${JSON.stringify(distSrc('drivers/rbd/librbd.js'))});
       console.log(m.loadLibrbd() !== undefined, ${mapped});`,
    );
    assert.equal(used.out, 'true true', used.err);
  });

  it('CAIRN_RBD_NATIVE=0 forces the CLI path', () => {
    const before = process.env.CAIRN_RBD_NATIVE;
    process.env.CAIRN_RBD_NATIVE = '0';
    try {
      assert.equal(loadLibrbd(), undefined);
      assert.match(librbdUnavailableReason() ?? '', /CAIRN_RBD_NATIVE=0/);
    } finally {
      if (before === undefined) delete process.env.CAIRN_RBD_NATIVE;
      else process.env.CAIRN_RBD_NATIVE = before;
    }
    assert.equal(loadLibrbd(), lib, 'cached');
    assert.equal(librbdUnavailableReason(), undefined);
    assert.match(lib.librbdVersion, /^\d+\.\d+\.\d+$/);
  });

  it('reports capacity, and NOT_FOUND for a missing pool or namespace', async () => {
    const stat = await cluster.stat();
    const pool = await cluster.poolStats(ceph.pool);
    // Without a ceph-mgr the cluster answers zeros: only the shape is certain.
    for (const v of [stat.totalBytes, stat.availBytes, stat.usedBytes, pool.bytes, pool.objects])
      assert.ok(Number.isSafeInteger(v) && v >= 0);
    await rejectsWith(cluster.poolStats('no-such-pool'), ErrorCode.NotFound, 'no-such-pool');
    await rejectsWith(cluster.openIoctx('no-such-pool'), ErrorCode.NotFound, 'rados_ioctx_create');
    await rejectsWith(cluster.openIoctx(ceph.pool, 'no-such-ns'), ErrorCode.NotFound, 'rbd_namespace_exists');
  });

  it('creates, lists, describes and removes images; maps ENOENT and EEXIST', async () => {
    const features = ['layering', 'exclusive-lock'];
    await io.create('life', 16 * MiB, { features });
    const info = await io.info('life');
    assert.equal(info.name, 'life');
    assert.equal(info.size, 16 * MiB);
    assert.equal(info.objectSize, OBJECT);
    assert.equal(info.features, featureMask(features));
    assert.deepEqual(info.featureNames, features);
    assert.equal(info.parent, undefined);
    assert.ok(Math.abs(info.createdAt.getTime() - Date.now()) < 60_000);
    assert.ok((await io.list()).some((i) => i.name === 'life' && i.id === info.id));
    // The CLI sees the same image.
    const viaCli = JSON.parse(await cli('info', '--image', 'life', '--format', 'json')) as { id: string };
    assert.equal(viaCli.id, info.id);

    const dup = await rejectsWith(io.create('life', MiB), ErrorCode.AlreadyExists, 'rbd_create4', 'life');
    assert.equal(dup.details?.errno, 17);
    assert.equal(dup.details?.exitCode, 17, 'where cli.ts keeps the errno too');
    assert.equal(dup.details?.code, 'EEXIST');
    assert.equal((await io.info('life')).size, 16 * MiB, 'the existing image is untouched');
    const missing = await rejectsWith(io.info('nope'), ErrorCode.NotFound, 'rbd_open_read_only', 'nope');
    assert.equal(errnoOf(missing), 2);
    await rejectsWith(
      io.create('x', MiB, { features: ['warp-drive'] }),
      ErrorCode.InvalidArgument,
      'warp-drive',
    );
    await rejectsWith(io.create('', MiB), ErrorCode.InvalidArgument, 'image');

    await io.remove('life');
    assert.ok(!(await io.list()).some((i) => i.name === 'life'));
    await rejectsWith(io.remove('life'), ErrorCode.NotFound, 'rbd_remove');
  });

  it('resizes: grows, refuses to shrink unless allowed', async () => {
    await io.create('grow', 8 * MiB);
    await io.resize('grow', 24 * MiB);
    assert.equal((await io.info('grow')).size, 24 * MiB);
    const shrink = await rejectsWith(io.resize('grow', 4 * MiB), ErrorCode.BackendFailure, 'rbd_resize2');
    assert.equal(errnoOf(shrink), EINVAL);
    await io.resize('grow', 4 * MiB, { allowShrink: true });
    assert.equal((await io.info('grow')).size, 4 * MiB);
    await rejectsWith(io.resize('nope', MiB), ErrorCode.NotFound);
    await io.remove('grow');
  });

  it('writes and reads small ranges; refuses to write past the end', async () => {
    await io.create('rw', 8 * MiB);
    await io.write('rw', 5 * MiB, Buffer.from('hello librbd'));
    assert.equal((await io.read('rw', 5 * MiB, 12)).toString(), 'hello librbd');
    assert.deepEqual([...(await io.read('rw', 0, 4))], [0, 0, 0, 0], 'unwritten ranges read as zeros');
    assert.equal((await io.read('rw', 8 * MiB - 2, 10)).length, 2, 'a read is cut at the end');
    const past = await rejectsWith(
      io.write('rw', 8 * MiB - 2, Buffer.from('abcd')),
      ErrorCode.BackendFailure,
    );
    assert.equal(errnoOf(past), EINVAL);
    assert.deepEqual([...(await io.read('rw', 8 * MiB - 2, 2))], [0, 0], 'nothing was written');
    await io.remove('rw');
  });

  it('snapshots: create, list, roll back to the data they hold, remove; an image with snapshots is ENOTEMPTY', async () => {
    await io.create('snappy', 16 * MiB);
    const before = Buffer.from('before the snapshot');
    const after = Buffer.from('AFTER  THE SNAPSHOT');
    for (const off of [0, 9 * MiB]) await io.write('snappy', off, before);
    await io.snapCreate('snappy', 's1');
    await rejectsWith(io.snapCreate('snappy', 's1'), ErrorCode.AlreadyExists, 'snappy@s1');
    const [s] = await io.snapList('snappy');
    assert.equal(s?.name, 's1');
    assert.equal(s?.namespace, 'user');
    assert.equal(s?.size, 16 * MiB);
    assert.equal(s?.protected, false);
    for (const off of [0, 9 * MiB]) await io.write('snappy', off, after);
    assert.deepEqual(await io.read('snappy', 0, after.length), after);

    await io.snapRollback('snappy', 's1');
    for (const off of [0, 9 * MiB]) assert.deepEqual(await io.read('snappy', off, before.length), before);
    await rejectsWith(io.snapRollback('snappy', 'nope'), ErrorCode.NotFound, 'rbd_snap_rollback');

    const busy = await rejectsWith(io.remove('snappy'), ErrorCode.BackendFailure, 'rbd_remove');
    assert.equal(errnoOf(busy), ENOTEMPTY);
    assert.equal(busy.details?.code, 'ENOTEMPTY');
    await io.snapRemove('snappy', 's1');
    await rejectsWith(io.snapRemove('snappy', 's1'), ErrorCode.NotFound, 'rbd_snap_remove');
    assert.deepEqual(await io.snapList('snappy'), []);
    await io.remove('snappy');
  });

  it('clones (v2, unprotected), lists children through the trash namespace, flattens', async () => {
    await io.create('parent', 16 * MiB, {
      features: ['layering', 'exclusive-lock', 'object-map', 'fast-diff'],
    });
    const data = Buffer.from('parent data');
    await io.write('parent', 3 * MiB, data);
    await io.snapCreate('parent', 'base');
    await io.clone('parent', 'base', 'child', { features: ['layering'] });
    await rejectsWith(io.clone('parent', 'base', 'child'), ErrorCode.AlreadyExists, 'rbd_clone3');
    await rejectsWith(io.clone('parent', 'nope', 'other'), ErrorCode.NotFound, 'parent@nope');

    const child = await io.info('child');
    // librbd adds `operations` to every clone v2 child, so clients too old for v2 keep off it.
    assert.deepEqual(child.featureNames, ['layering', 'operations']);
    assert.equal(child.parent?.pool, ceph.pool);
    assert.equal(child.parent?.image, 'parent');
    assert.equal(child.parent?.snap, 'base');
    assert.equal(child.parent?.snapNamespace, 'user');
    assert.equal(child.parent?.overlap, 16 * MiB);
    assert.deepEqual(
      await io.read('child', 3 * MiB, data.length),
      data,
      'the child reads through to its parent',
    );
    assert.equal(await io.allocatedBytes('child'), 0, 'a fresh clone owns no objects');
    assert.deepEqual(
      (await io.children('parent')).map((c) => [c.pool, c.namespace, c.image, c.snap, c.trash]),
      [[ceph.pool, '', 'child', 'base', false]],
    );

    // Removing a snapshot that has clones moves it to the trash namespace.
    await io.snapRemove('parent', 'base');
    const [trashed] = await io.snapList('parent');
    assert.equal(trashed?.namespace, 'trash');
    assert.equal(trashed?.trashOf, 'base');
    assert.notEqual(trashed?.name, 'base');
    assert.equal((await io.info('child')).parent?.snapNamespace, 'trash');
    const [link] = await io.children('parent');
    assert.equal(link?.image, 'child');
    assert.equal(link?.snap, trashed?.name);
    const held = await rejectsWith(io.remove('parent'), ErrorCode.BackendFailure);
    assert.equal(errnoOf(held), ENOTEMPTY, 'a trash-namespace snapshot with a clone still holds the parent');

    await io.flatten('child');
    assert.equal((await io.info('child')).parent, undefined);
    assert.deepEqual(await io.read('child', 3 * MiB, data.length), data, 'the data was copied');
    assert.ok((await io.allocatedBytes('child')) > 0);
    assert.deepEqual(await io.snapList('parent'), [], 'the trashed snapshot went with its last clone');
    assert.deepEqual(await io.children('parent'), []);
    await rejectsWith(io.flatten('child'), ErrorCode.BackendFailure, 'rbd_flatten');
    await io.remove('parent');
    await io.remove('child');
  });

  it('clones into another RADOS namespace; the namespace ioctx sees only its own images', async () => {
    await cli('namespace', 'create', '--namespace', 'tenant1');
    const ns = await cluster.openIoctx(ceph.pool, 'tenant1');
    assert.equal(ns.namespace, 'tenant1');
    await io.create('shared', 8 * MiB);
    await io.snapCreate('shared', 'gold');
    await io.clone('shared', 'gold', 'tenant-copy', { destination: ns });
    assert.deepEqual(
      (await ns.list()).map((i) => i.name),
      ['tenant-copy'],
    );
    assert.ok(!(await io.list()).some((i) => i.name === 'tenant-copy'));
    const [c] = await io.children('shared');
    assert.equal(c?.namespace, 'tenant1');
    assert.equal((await ns.info('tenant-copy')).parent?.namespace, '');
    await ns.remove('tenant-copy');
    await io.snapRemove('shared', 'gold');
    await io.remove('shared');
    await ns.close();
  });

  it('renames; a taken name is ALREADY_EXISTS and a missing one NOT_FOUND', async () => {
    await io.create('old-name', MiB);
    await io.create('taken', MiB);
    await rejectsWith(io.rename('old-name', 'taken'), ErrorCode.AlreadyExists, 'rbd_rename');
    await io.rename('old-name', 'new-name');
    await rejectsWith(io.info('old-name'), ErrorCode.NotFound);
    assert.equal((await io.info('new-name')).size, MiB);
    await rejectsWith(io.rename('old-name', 'other'), ErrorCode.NotFound);
    await io.remove('new-name');
    await io.remove('taken');
  });

  it('moves images to the RBD trash, lists, restores and removes them (deferment respected)', async () => {
    await io.create('binned', MiB);
    const t0 = Date.now();
    await io.trashMove('binned', 3600);
    assert.ok(!(await io.list()).some((i) => i.name === 'binned'));
    const entry = (await io.trashList()).find((e) => e.name === 'binned');
    assert.ok(entry);
    assert.equal(entry.source, 'user');
    assert.ok(Math.abs(entry.deferredUntil.getTime() - (t0 + 3_600_000)) < 60_000);
    const early = await rejectsWith(io.trashRemove(entry.id), ErrorCode.BackendFailure, 'rbd_trash_remove');
    assert.equal(errnoOf(early), EPERM);
    await io.trashRestore(entry.id, 'unbinned');
    assert.equal((await io.info('unbinned')).id, entry.id);
    await io.trashMove('unbinned');
    await io.trashRemove(entry.id);
    assert.deepEqual(await io.trashList(), []);
    await rejectsWith(io.trashRemove(entry.id, { force: true }), ErrorCode.NotFound);
    await rejectsWith(io.trashMove('nope'), ErrorCode.NotFound);
  });

  it('counts allocated bytes by object, at the head, at a snapshot and since one', async () => {
    await io.create('usage', 32 * MiB, {
      features: ['layering', 'exclusive-lock', 'object-map', 'fast-diff'],
    });
    assert.equal(await io.allocatedBytes('usage'), 0);
    await io.write('usage', 0, Buffer.from('a'));
    await io.write('usage', 9 * MiB, Buffer.from('b'));
    assert.equal(await io.allocatedBytes('usage'), 2 * OBJECT);
    await io.snapCreate('usage', 'first');
    await io.write('usage', 20 * MiB, Buffer.from('c'));
    assert.equal(await io.allocatedBytes('usage'), 3 * OBJECT);
    assert.equal(await io.allocatedBytes('usage', { snap: 'first' }), 2 * OBJECT);
    assert.equal(await io.allocatedBytes('usage', { fromSnap: 'first' }), OBJECT);
    await rejectsWith(io.allocatedBytes('usage', { snap: 'nope' }), ErrorCode.NotFound);
    await io.snapRemove('usage', 'first');
    await io.remove('usage');
  });

  it('runs calls concurrently off the JS thread', async () => {
    const names = Array.from({ length: 16 }, (_, i) => `par-${i}`);
    await Promise.all(names.map((n) => io.create(n, MiB)));
    const listed = new Set((await io.list()).map((i) => i.name));
    for (const n of names) assert.ok(listed.has(n));
    await Promise.all(names.map((n) => io.remove(n)));
  });

  it('rejects calls on a closed ioctx or cluster; shutdown closes its ioctxs and is idempotent', async () => {
    const c = await lib.connect({ monHost: ceph.monHost, timeoutSeconds: 10 });
    const a = await c.openIoctx(ceph.pool);
    const b = await c.openIoctx(ceph.pool);
    await a.create('short-lived', MiB);
    await a.close();
    await a.close();
    const closed = await rejectsWith(a.list(), ErrorCode.BackendFailure);
    assert.equal(errnoOf(closed), ESHUTDOWN);
    await b.remove('short-lived');
    await Promise.all([c.shutdown(), c.shutdown()]);
    assert.equal(errnoOf(await rejectsWith(b.list(), ErrorCode.BackendFailure)), ESHUTDOWN);
    assert.equal(errnoOf(await rejectsWith(c.openIoctx(ceph.pool), ErrorCode.BackendFailure)), ESHUTDOWN);

    // shutdown() while an ioctx is still opening: it opens, closed, and the cluster goes down after it.
    const d = await lib.connect({ conf: ceph.conf, timeoutSeconds: 10 });
    const opening = d.openIoctx(ceph.pool);
    await d.shutdown();
    const late = await opening;
    assert.equal(errnoOf(await rejectsWith(late.list(), ErrorCode.BackendFailure)), ESHUTDOWN);
  });

  it('lets node exit, with or without shutdown, and after the handles were collected', () => {
    const wrapper = JSON.stringify(distSrc('drivers/rbd/librbd.js'));
    const script = (tail: string) =>
      `const lib = (await import(${wrapper})).loadLibrbd();
       let c = await lib.connect({ conf: process.env.CONF, timeoutSeconds: 10 });
       let io = await c.openIoctx(process.env.POOL);
       await io.list();
       ${tail}
       console.log('done');`;
    const env = { CONF: ceph.conf, POOL: ceph.pool };
    for (const [what, tail] of [
      ['shutdown', 'await c.shutdown();'],
      ['no shutdown', ''],
      ['process.exit', "console.log('done'); process.exit(0);"],
    ] as const) {
      const t0 = Date.now();
      const r = node(script(tail), env);
      assert.deepEqual([r.status, r.signal, r.out], [0, null, 'done'], `${what}: ${r.err}`);
      assert.ok(Date.now() - t0 < 20_000, `${what}: exits promptly`);
    }
    const gc = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        '--input-type=module',
        '-e',
        script(
          'c = undefined; io = undefined; globalThis.gc(); await new Promise((r) => setTimeout(r, 300));',
        ),
      ],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } },
    );
    assert.deepEqual([gc.status, gc.signal, gc.stdout.trim()], [0, null, 'done'], gc.stderr);
  });

  // Last: it stops the monitor of the shared cluster.
  it('a stopped monitor gives TIMEOUT within the bound, never blocking the event loop; no key in errors', async () => {
    const key = (await run(['ceph-authtool', '--gen-print-key'])).trim();
    // Not a cephx key: refused before any network traffic (this cluster needs no auth, but a
    // connection without a conf file defaults to cephx).
    const malformed = 'not-a-cephx-key-but-still-a-secret';
    const bad = await rejectsWith(
      lib.connect({ monHost: ceph.monHost, key: malformed, timeoutSeconds: 2 }),
      ErrorCode.BackendFailure,
      'rados_connect',
    );
    assert.ok(!bad.message.includes(malformed));
    const missingConf = await rejectsWith(
      lib.connect({ conf: '/nonexistent/ceph.conf', key, timeoutSeconds: 2 }),
      ErrorCode.NotFound,
      'rados_conf_read_file',
    );
    assert.ok(!missingConf.message.includes(key));
    // A connection with a short bound, so the timeouts below don't wait for the shared one's 10 s.
    const quick = await lib.connect({ conf: ceph.conf, timeoutSeconds: 3 });
    const qio = await quick.openIoctx(ceph.pool);
    await qio.create('before-stop', MiB);
    await ceph.stopMonitor();

    // Ticks of a 10 ms timer show whether the JS thread stayed free while connect waited.
    let ticks = 0;
    let longest = 0;
    let last = Date.now();
    const timer = setInterval(() => {
      const now = Date.now();
      longest = Math.max(longest, now - last);
      last = now;
      ticks++;
    }, 10);
    const t0 = Date.now();
    let err: unknown;
    try {
      await lib.connect({ monHost: ceph.monHost, key, timeoutSeconds: 3 });
    } catch (e) {
      err = e;
    } finally {
      clearInterval(timer);
    }
    const took = Date.now() - t0;
    assert.ok(isCairnError(err, ErrorCode.Timeout), `expected TIMEOUT, got ${String(err)}`);
    assert.equal(err.details?.connected, false, 'a connect that timed out never reached the cluster');
    assert.equal(errnoOf(err), 110);
    assert.match(err.message, /rados_connect/);
    assert.ok(!err.message.includes(key), 'the key is not in the message');
    assert.ok(!JSON.stringify(err.details).includes(key));
    assert.ok(took >= 2500 && took < 8000, `bounded by timeoutSeconds: took ${took} ms`);
    assert.ok(ticks > 100 && longest < 500, `the event loop ran (${ticks} ticks, longest gap ${longest} ms)`);

    // An open connection: monitor round trips time out, OSD-only work still goes through.
    const t1 = Date.now();
    const stats = await rejectsWith(quick.poolStats(ceph.pool), ErrorCode.Timeout, 'rados_ioctx_pool_stat');
    assert.equal(stats.details?.connected, true);
    // A snapshot id comes from the monitor.
    await rejectsWith(qio.snapCreate('before-stop', 's'), ErrorCode.Timeout, 'rbd_snap_create');
    assert.ok(Date.now() - t1 < 12_000, `two bounded waits of 3 s took ${Date.now() - t1} ms`);
    assert.equal((await qio.info('before-stop')).size, MiB);
    await qio.remove('before-stop');
    await quick.shutdown();
  });
});
