// The rbd driver and connector against a real single-node Ceph cluster (test/harness/ceph.ts):
// clone depth, parents with live clones, name collisions, a missing pool, a stopped monitor,
// and I/O through rbd-fuse + loop.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createRbdConnector } from '../../src/connectors/rbd.js';
import { createRunner } from '../../src/exec/runner.js';
import { type Backend, Cairn, ErrorCode } from '../../src/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { rejectsWith } from '../harness/assert.js';
import { kernelDeviceSize, MiB, pattern, readAt, writeAt } from '../harness/blockdev.js';
import { type CephCluster, startCeph } from '../harness/ceph.js';
import { run } from '../harness/exec.js';
import { loopsUnder } from '../harness/loops.js';
import { unmountAllUnder } from '../harness/mounts.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

const rbd = (c: CephCluster, ...args: string[]) => run(['rbd', '-c', c.conf, '--pool', c.pool, ...args]);
const info = async (c: CephCluster, image: string) =>
  JSON.parse(await rbd(c, 'info', '--image', image, '--format', 'json')) as {
    size: number;
    parent?: { image: string };
  };
const images = async (c: CephCluster) => JSON.parse(await rbd(c, 'ls', '--format', 'json')) as string[];

describe('rbd driver on a real Ceph cluster', () => {
  let ceph: CephCluster;
  let root: TempDir;
  let state: TempDir;
  let cairn: Cairn;
  let pool: Backend;

  before(async () => {
    ceph = await startCeph();
    root = await tempDir('cairn-rbd-run-');
    process.env.CAIRN_RUN_DIR = root.path;
    state = await tempDir('cairn-rbd-state-');
    cairn = await Cairn.open({ state: `sqlite:${state.path}/s.db` });
    pool = await cairn.addBackend('ceph', {
      driver: 'rbd',
      pool: ceph.pool,
      cephConf: ceph.conf,
      maxCloneDepth: 2,
      timeoutMs: 5000,
    });
  });

  after(async () => {
    for (const c of await cairn.connections().catch(() => []))
      await c.disconnect({ force: true }).catch(() => {});
    await cairn?.close();
    // Before the cluster stops: a FUSE mount whose cluster is gone hangs whoever touches it.
    const leaked = await unmountAllUnder(root.path);
    await ceph?.stop();
    assert.deepEqual(leaked, [], 'no rbd-fuse mount left');
    assert.deepEqual(await loopsUnder(root.path), [], 'no loop device left');
    await root?.cleanup();
    await state?.cleanup();
  });

  it('flattens a clone deeper than maxCloneDepth', async () => {
    const a = await pool.createVolume({ size: 8 * MiB });
    const b = await a.clone();
    const c = await b.clone();
    const d = await c.clone(); // depth 3 > 2
    assert.equal((await info(ceph, `volume-${b.id}`)).parent?.image, `volume-${a.id}`);
    assert.equal((await info(ceph, `volume-${c.id}`)).parent?.image, `volume-${b.id}`);
    assert.equal((await info(ceph, `volume-${d.id}`)).parent, undefined, 'the deep clone is flattened');
    for (const v of [d, c, b, a]) await v.delete();
  });

  it('deletes a parent with live clones by flattening them; the children keep their data', async () => {
    const parent = await pool.createVolume({ size: 16 * MiB });
    const data = pattern('parent-data');
    const conn = await parent.attach();
    await writeAt(conn.path!, [0, 5 * MiB], data);
    await parent.detach();
    const snap = await parent.createSnapshot();
    const fromSnap = await snap.createVolume();
    const clone = await parent.clone();
    await snap.delete(); // has a clone: goes to Ceph's trash namespace
    await parent.delete();
    assert.ok(!(await images(ceph)).includes(`volume-${parent.id}`));
    for (const child of [fromSnap, clone]) {
      assert.equal((await info(ceph, `volume-${child.id}`)).parent, undefined);
      const dev = (await child.attach()).path!;
      for (const off of [0, 5 * MiB]) assert.ok((await readAt(dev, off, data.length)).equals(data));
      await child.detach();
      await child.delete();
    }
  });

  it('with deleteParentPolicy trash, deletes a parent at once and purges it after its last clone', async () => {
    const trash = await cairn.addBackend('ceph-trash', {
      driver: 'rbd',
      pool: ceph.pool,
      cephConf: ceph.conf,
      deleteParentPolicy: 'trash',
    });
    try {
      const parent = await trash.createVolume({ size: 8 * MiB });
      const data = pattern('trash-parent');
      await writeAt((await parent.attach()).path!, [0], data);
      await parent.detach();
      const clone = await parent.clone();
      await parent.delete();
      assert.ok(!(await images(ceph)).includes(`volume-${parent.id}`), 'gone from the pool listing');
      const trashed = JSON.parse(await rbd(ceph, 'trash', 'ls', '--format', 'json')) as Array<{
        name: string;
      }>;
      assert.ok(
        trashed.some((t) => t.name === `volume-${parent.id}`),
        'kept in the trash for its clone',
      );
      assert.equal(
        (await info(ceph, `volume-${clone.id}`)).parent?.image,
        `volume-${parent.id}`,
        'not flattened',
      );
      const dev = (await clone.attach()).path!;
      assert.ok((await readAt(dev, 0, data.length)).equals(data), 'the clone still reads its parent');
      await clone.detach();
      await clone.delete(); // the last clone: the trashed parent is purged too
      const left = JSON.parse(await rbd(ceph, 'trash', 'ls', '--format', 'json')) as Array<{ name: string }>;
      assert.deepEqual(
        left.map((t) => t.name),
        [],
      );
    } finally {
      await trash.close();
    }
  });

  it('passes a key through a private key file, never on a command line', async () => {
    const seen: string[][] = [];
    const real = createRunner({ logger: silentLogger });
    const key = 'AQBsecretsecretsecretsecretsecretsecret==';
    // The CLI path (librbd takes the key in-process, with no command line to leak it on).
    process.env.CAIRN_RBD_NATIVE = '0';
    const watched = await Cairn.open({
      state: 'memory:',
      runner: {
        run: (argv, o) => {
          seen.push([...argv]);
          return real.run(argv, o);
        },
      },
    });
    try {
      const b = await watched.addBackend('keyed', {
        driver: 'rbd',
        pool: ceph.pool,
        cephConf: ceph.conf,
        key,
      });
      const v = await b.createVolume({ size: 4 * MiB });
      await v.delete();
      const flat = seen.flat();
      assert.ok(!flat.some((a) => a.includes(key)), 'the key is in no argv');
      const file = flat[flat.indexOf('--keyfile') + 1];
      assert.ok(file, 'rbd got --keyfile');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(readFileSync(file, 'utf8').trim(), key);
      assert.ok(!JSON.stringify(b.toJSON()).includes(key), 'not serialized');
      await b.close();
      assert.equal(existsSync(file), false, 'removed when the backend closes');
    } finally {
      delete process.env.CAIRN_RBD_NATIVE;
      await watched.close();
    }
  });

  it('refuses an image name that exists on the cluster, changing nothing', async () => {
    const id = '0f0f0f0f-aaaa-bbbb-cccc-121212121212';
    await rbd(ceph, 'create', '--size', '4M', '--image', `volume-${id}`);
    await rejectsWith(pool.createVolume({ size: 8 * MiB, id }), ErrorCode.AlreadyExists);
    assert.equal((await info(ceph, `volume-${id}`)).size, 4 * MiB, 'the foreign image is untouched');
    assert.deepEqual(await pool.volumes(), []);
    await rbd(ceph, 'rm', '--no-progress', '--image', `volume-${id}`);
  });

  it('refuses a missing pool at addBackend, naming it', async () => {
    await rejectsWith(
      cairn.addBackend('nopool', { driver: 'rbd', pool: 'no-such-pool', cephConf: ceph.conf }),
      ErrorCode.InvalidArgument,
      'no-such-pool',
    );
    assert.throws(() => cairn.backend('nopool'), { code: ErrorCode.NotFound });
  });

  it('attaches through rbd-fuse + loop: write, detach, re-attach, read; extends while attached', async () => {
    const vol = await pool.createVolume({ size: 32 * MiB });
    const conn = await vol.attach();
    assert.match(conn.path!, /^\/dev\/loop\d+$/);
    assert.equal(conn.info.protocol, 'rbd');
    assert.equal(conn.info.data.image, `volume-${vol.id}`);
    assert.equal(conn.info.data.key, undefined);
    const data = pattern('fuse-io');
    await writeAt(conn.path!, [0, 31 * MiB], data);
    await vol.extend(48 * MiB);
    assert.equal(await kernelDeviceSize(conn.path!), 48 * MiB);
    assert.equal((await info(ceph, `volume-${vol.id}`)).size, 48 * MiB);
    await writeAt(conn.path!, [47 * MiB], data);
    // Recovery finds the device from the system alone.
    const connector = createRbdConnector(createRunner({ logger: silentLogger }));
    assert.deepEqual(await connector.findDevices(conn.info), [{ path: conn.path, type: 'block' }]);
    await vol.detach();
    assert.deepEqual(await connector.findDevices(conn.info), []);
    assert.deepEqual(await loopsUnder(root.path), []);
    const mounts = await run(['findmnt', '-rn', '-t', 'fuse.rbd-fuse', '-o', 'TARGET']).catch(() => '');
    assert.ok(!mounts.includes(root.path), 'rbd-fuse is unmounted after detach');
    const dev = (await vol.attach()).path!;
    for (const off of [0, 31 * MiB, 47 * MiB]) assert.ok((await readAt(dev, off, data.length)).equals(data));
    await vol.detach();
    await vol.delete();
  });

  it('works in a RADOS namespace: create, snapshot, clone, attach and I/O', async () => {
    await rbd(ceph, 'namespace', 'create', '--namespace', 'tenant1');
    const ns = await cairn.addBackend('ceph-ns', {
      driver: 'rbd',
      pool: ceph.pool,
      namespace: 'tenant1',
      cephConf: ceph.conf,
    });
    const vol = await ns.createVolume({ size: 8 * MiB });
    const listed = JSON.parse(
      await rbd(ceph, 'ls', '--namespace', 'tenant1', '--format', 'json'),
    ) as string[];
    assert.deepEqual(listed, [`volume-${vol.id}`]);
    assert.ok(!(await images(ceph)).includes(`volume-${vol.id}`), 'not in the default namespace');
    const data = pattern('ns-io');
    const conn = await vol.attach();
    assert.equal(conn.info.data.namespace, 'tenant1');
    await writeAt(conn.path!, [MiB], data);
    await vol.detach();
    const snap = await vol.createSnapshot();
    const copy = await snap.createVolume();
    const dev = (await copy.attach()).path!;
    assert.ok((await readAt(dev, MiB, data.length)).equals(data));
    await copy.detach();
    await copy.delete();
    await snap.delete();
    await vol.delete();
    await ns.close();
  });

  // Last: it stops the monitor.
  it('fails within the timeout when the cluster stops answering, leaving nothing half-made', async () => {
    const kept = await pool.createVolume({ size: 8 * MiB });
    // Monitor and OSD: a librbd client that is connected already goes on working with the OSD
    // alone, so stopping only the monitor would not make this cluster unreachable for it.
    await ceph.stopDaemons();
    const t0 = Date.now();
    await assert.rejects(
      pool.createVolume({ size: 8 * MiB, name: 'during-outage' }),
      (err: { code?: string }) => {
        assert.ok(['TIMEOUT', 'BACKEND_FAILURE'].includes(err.code ?? ''), `code ${err.code}`);
        return true;
      },
    );
    const ms = Date.now() - t0;
    assert.ok(ms < 5000 + 3000, `failed after ${ms} ms (bound 5 s)`);
    // The rbd CLI never reached the cluster: nothing was made, no record stays. librbd was
    // connected: the image may exist, so the volume stays as `error` with the reason.
    const left = (await pool.volumes()).filter((v) => v.id !== kept.id);
    if (left.length > 0) {
      assert.deepEqual(
        left.map((v) => [v.name, v.status]),
        [['during-outage', 'error']],
      );
      assert.match(left[0]!.lastError?.message ?? '', /did not answer in time/);
    }
  });
});
