import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { link, lstat, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadCsiConfig, parseEndpoint } from '../../src/csi/config.js';
import { startCsiServer } from '../../src/csi/server.js';
import { silentLogger } from '../../src/util/logger.js';
import {
  connect,
  createRequest,
  killPlugins,
  MiB,
  mountCap,
  retryAborted,
  type Sandbox,
  sandbox,
  spawnPlugin,
  startPlugin,
  waitReady,
} from './client.js';

const boxes: Sandbox[] = [];
async function box(env: Record<string, string> = {}): Promise<Sandbox> {
  const b = await sandbox(env);
  boxes.push(b);
  return b;
}
after(async () => {
  killPlugins();
  for (const b of boxes) await rm(b.dir, { recursive: true, force: true });
});

const exists = (path: string) =>
  lstat(path).then(
    () => true,
    () => false,
  );

/** Leaves a socket file nobody listens on at `path` (a plugin killed with -9 leaves one). */
async function staleSocket(path: string): Promise<void> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(`${path}.tmp`, resolve));
  await link(`${path}.tmp`, path); // a second name for the socket, which close() does not remove
  await new Promise<void>((resolve) => s.close(() => resolve()));
}

describe('the unix socket', () => {
  it('is created with mode 0600 and removed on close', async () => {
    const p = await startPlugin({}, await box());
    const st = await stat(p.sandbox.socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(p.server.address, `unix://${p.sandbox.socket}`);
    await p.stop({ keep: true });
    assert.equal(await exists(p.sandbox.socket), false);
  });

  it('replaces a stale socket nobody listens on', async () => {
    const b = await box();
    await staleSocket(b.socket);
    assert.ok((await lstat(b.socket)).isSocket());
    const p = await startPlugin({}, b);
    try {
      assert.equal((await p.identity('GetPluginInfo')).name, 'csi.cairn.io');
    } finally {
      await p.stop({ keep: true });
    }
  });

  it('refuses a socket another process listens on, and a path that is not a socket', async () => {
    const b = await box();
    const other = createServer();
    await new Promise<void>((resolve) => other.listen(b.socket, resolve));
    try {
      await assert.rejects(startPlugin({}, b), /another process is listening on/);
      assert.ok((await lstat(b.socket)).isSocket(), 'the live socket is left alone');
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
    await writeFile(b.socket, 'precious');
    await assert.rejects(startPlugin({}, b), /exists and is not a socket/);
    assert.equal(await readFile(b.socket, 'utf8'), 'precious');
  });

  it('creates the socket directory when missing', async () => {
    const b = await box();
    const socket = join(b.dir, 'run', 'cairn', 'csi.sock');
    const p = await startPlugin({ CSI_ENDPOINT: `unix://${socket}` }, b);
    try {
      assert.ok((await stat(socket)).isSocket());
    } finally {
      await p.stop({ keep: true });
    }
  });
});

describe('a TCP endpoint', () => {
  it('listens on the port asked for (0 = a free one) and reports it', async () => {
    const b = await box();
    const p = await startPlugin({ CSI_ENDPOINT: 'tcp://127.0.0.1:0' }, b);
    try {
      assert.match(p.server.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(p.server.address, 'tcp://127.0.0.1:0');
      assert.equal((await p.identity('GetPluginInfo')).name, 'csi.cairn.io');
    } finally {
      await p.stop({ keep: true });
    }
  });
});

describe('configuration', () => {
  it('parses endpoints', () => {
    assert.deepEqual(parseEndpoint('unix:///run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
    assert.deepEqual(parseEndpoint('unix:/run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
    assert.deepEqual(parseEndpoint('unix:rel.sock'), { kind: 'unix', path: join(process.cwd(), 'rel.sock') });
    assert.deepEqual(parseEndpoint('tcp://[::1]:10000'), { kind: 'tcp', host: '[::1]', port: 10000 });
    assert.throws(() => parseEndpoint('unix://relative.sock'), /CSI_ENDPOINT: .*absolute path/);
    assert.throws(() => parseEndpoint('http://x:1'), /CSI_ENDPOINT: .*is not an endpoint/);
    assert.throws(() => parseEndpoint('tcp://x:99999'), /port/);
  });

  it('has defaults for everything but the config file', async () => {
    const b = await box();
    const c = await loadCsiConfig({ configPath: b.configFile, env: {} });
    assert.deepEqual(c.endpoint, { kind: 'unix', path: '/run/cairn/csi.sock' });
    assert.equal(c.mode, 'all');
    assert.equal(c.driverName, 'csi.cairn.io');
    assert.equal(c.nodeId, hostname());
    assert.equal(c.defaultFsType, 'ext4');
    assert.equal(c.maxVolumesPerNode, 0);
    assert.equal(c.nodeStateDir, '/var/lib/cairn/csi-node');
    assert.equal(c.concurrency, 'abort');
    assert.equal(c.library.defaultBackend, 'pool');
    assert.deepEqual(Object.keys(c.library.backends), ['pool', 'thick']);
  });

  it('reads CAIRN_CSI_CONFIG; errors name the variable or field', async () => {
    const b = await box();
    const c = await loadCsiConfig({
      env: { CAIRN_CSI_CONFIG: b.configFile, CAIRN_CSI_MODE: 'node', CAIRN_CSI_MAX_VOLUMES_PER_NODE: '7' },
    });
    assert.equal(c.library.file, b.configFile);
    assert.equal(c.mode, 'node');
    assert.equal(c.maxVolumesPerNode, 7);
    const bad = (env: Record<string, string>, re: RegExp) =>
      assert.rejects(loadCsiConfig({ configPath: b.configFile, env }), re);
    await bad({ CAIRN_CSI_MODE: 'both' }, /CAIRN_CSI_MODE/);
    await bad({ CAIRN_CSI_NODE_ID: 'no spaces allowed' }, /CAIRN_CSI_NODE_ID/);
    await bad({ CAIRN_CSI_NODE_ID: 'x'.repeat(64) }, /CAIRN_CSI_NODE_ID/);
    await bad({ CAIRN_CSI_MAX_VOLUMES_PER_NODE: '-1' }, /CAIRN_CSI_MAX_VOLUMES_PER_NODE/);
    await bad({ CAIRN_CSI_DEFAULT_FS: 'zfs' }, /CAIRN_CSI_DEFAULT_FS/);
    await bad({ CAIRN_CSI_CONCURRENCY: 'yolo' }, /CAIRN_CSI_CONCURRENCY/);
    await bad({ CAIRN_CSI_DRIVER_NAME: '-bad-' }, /CAIRN_CSI_DRIVER_NAME/);
    await bad({ CAIRN_CSI_NODE_STATE_DIR: 'relative' }, /CAIRN_CSI_NODE_STATE_DIR/);
    await bad({ CSI_ENDPOINT: 'nowhere' }, /CSI_ENDPOINT/);
    await writeFile(
      join(b.dir, 'bad.yaml'),
      `state: sqlite:${join(b.dir, 'bad.db')}\nbackends:\n  pool:\n    driver: file\n    paht: /x\n`,
    );
    await assert.rejects(
      startCsiServer({
        config: await loadCsiConfig({ configPath: join(b.dir, 'bad.yaml'), env: b.env }),
        logger: silentLogger,
      }),
      /backends\.pool: .*paht/,
    );
  });
});

describe('the cairn-csi binary', () => {
  it('prints help and its version', async () => {
    const b = await box();
    const help = spawnPlugin(b, {}, ['--help']);
    assert.deepEqual(await help.exited, { code: 0, signal: null });
    const bad = spawnPlugin(b, {}, ['--nope']);
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.stderr(), /unknown argument "--nope"/);
  });

  it('fails fast with exit code 2 and a message naming the variable', async () => {
    const b = await box();
    const proc = spawnPlugin(b, { CAIRN_CSI_MODE: 'sideways' });
    assert.equal((await proc.exited).code, 2);
    assert.match(proc.stderr(), /^cairn-csi: .*CAIRN_CSI_MODE/);
    assert.equal(await exists(b.socket), false);
  });

  it('keeps its state across kill -9 and restart; SIGTERM stops it cleanly', async () => {
    const b = await box();
    const address = `unix://${b.socket}`;
    let proc = spawnPlugin(b);
    await waitReady(address, proc);
    let c = connect(address);
    const kept = (await c.controller('CreateVolume', createRequest(`pvc-${randomUUID()}`, 4 * MiB))).volume;
    await c.controller('ControllerPublishVolume', {
      volume_id: kept.volume_id,
      node_id: hostname(),
      volume_capability: mountCap(),
    });
    // Kill it in the middle of a burst of creates.
    const names = Array.from({ length: 6 }, () => `pvc-${randomUUID()}`);
    const burst = names.map((n) => c.controller('CreateVolume', createRequest(n, 8 * MiB)).catch(() => null));
    await new Promise((r) => setTimeout(r, 5));
    proc.child.kill('SIGKILL');
    assert.equal((await proc.exited).signal, 'SIGKILL');
    await Promise.all(burst);
    c.close();
    assert.ok((await lstat(b.socket)).isSocket(), 'kill -9 leaves the socket behind');

    proc = spawnPlugin(b);
    await waitReady(address, proc);
    c = connect(address);
    try {
      const got = await c.controller('ControllerGetVolume', { volume_id: kept.volume_id });
      assert.deepEqual(got.volume, kept);
      assert.deepEqual(got.status.published_node_ids, [hostname()]);
      // Every create of the burst can be retried: the plugin answers for each name. A name lock
      // the killed process was taking may answer ABORTED until it is old enough to break.
      for (const n of names)
        await retryAborted(() => c.controller('CreateVolume', createRequest(n, 8 * MiB)));
      const list = await c.controller('ListVolumes', {});
      assert.equal(list.entries.length, names.length + 1);
      for (const e of list.entries) assert.equal(e.status.volume_condition.abnormal, false);
    } finally {
      c.close();
    }
    proc.child.kill('SIGTERM');
    assert.deepEqual(await proc.exited, { code: 0, signal: null });
    assert.equal(await exists(b.socket), false, 'the socket is removed on SIGTERM');
  });
});
