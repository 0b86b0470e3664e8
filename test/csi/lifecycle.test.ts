import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { status } from '@grpc/grpc-js';
import { pattern, readAt, writeAt } from '../harness/blockdev.js';
import {
  blockCap,
  type Clients,
  connect,
  MiB,
  mountCap,
  type PluginProcess,
  rejectsCode,
  type Sandbox,
  sandbox,
  spawnPlugin,
  waitReady,
} from './client.js';
import { assertNothingLeft, cleanUpUnder, hasCapSysResource } from './node-harness.js';

// The whole life of volumes through the real `cairn-csi` binary in a child process serving the
// Controller and the Node (mode all): create → publish → stage → publish twice → I/O → expand →
// stats → unpublish → unstage → snapshot → restore → delete, for ext4, xfs and block volumes; and
// a plugin killed with SIGKILL after staging, restarted, finishing the cycle from its state dir.

const NODE = hostname();
const MODE = 'SINGLE_NODE_MULTI_WRITER';
let sb: Sandbox;
let plugin: PluginProcess;
let csi: Clients;

async function startPluginProcess(): Promise<void> {
  plugin = spawnPlugin(sb);
  await waitReady(`unix://${sb.socket}`, plugin);
  csi = connect(`unix://${sb.socket}`);
}

before(async () => {
  sb = await sandbox({ CAIRN_CSI_MODE: 'all', CAIRN_CSI_DEFAULT_FS: 'ext4' });
  await startPluginProcess();
});
after(async () => {
  csi?.close();
  if (plugin && plugin.child.exitCode === null && plugin.child.signalCode === null) {
    plugin.child.kill('SIGKILL');
    await plugin.exited;
  }
  await cleanUpUnder(sb.dir);
  await rm(sb.dir, { recursive: true, force: true });
});

type Kind = 'ext4' | 'xfs' | 'block';
const capOf = (kind: Kind) => (kind === 'block' ? blockCap(MODE) : mountCap(MODE, kind));

/** The CO's paths for one volume: a staging dir it creates, and targets whose parent it creates. */
async function paths(name: string) {
  const staging = join(sb.dir, 'kubelet', 'staging', name);
  await mkdir(staging, { recursive: true });
  await mkdir(join(sb.dir, 'kubelet', 'pods', name), { recursive: true });
  return { staging, target: (t: string) => join(sb.dir, 'kubelet', 'pods', name, t) };
}

async function createVolume(name: string, kind: Kind, size: number, source?: object): Promise<string> {
  const { volume } = await csi.controller('CreateVolume', {
    name,
    capacity_range: { required_bytes: String(size) },
    volume_capabilities: [capOf(kind)],
    ...(source ? { volume_content_source: source } : {}),
  });
  return volume.volume_id as string;
}

/** ControllerPublish → NodeStage → NodePublish (rw, and ro when asked); returns the targets. */
async function bringUp(id: string, name: string, kind: Kind, ro: boolean) {
  const cap = capOf(kind);
  const { publish_context } = await csi.controller('ControllerPublishVolume', {
    volume_id: id,
    node_id: NODE,
    volume_capability: cap,
    readonly: false,
  });
  assert.equal(publish_context['cairn.io/protocol'], 'local');
  const p = await paths(name);
  const stage = { volume_id: id, publish_context, staging_target_path: p.staging, volume_capability: cap };
  await csi.node('NodeStageVolume', stage);
  await csi.node('NodeStageVolume', stage); // idempotent
  const publish = (target: string, readonly: boolean) =>
    csi.node('NodePublishVolume', {
      volume_id: id,
      publish_context,
      staging_target_path: p.staging,
      target_path: target,
      volume_capability: cap,
      readonly,
    });
  const rw = p.target('rw');
  const roTarget = p.target('ro');
  await publish(rw, false);
  if (ro) await publish(roTarget, true);
  await publish(rw, false); // idempotent
  return { staging: p.staging, rw, ro: ro ? roTarget : null, publish_context };
}

async function tearDown(id: string, up: { staging: string; rw: string; ro: string | null }) {
  for (const t of [up.rw, up.ro]) {
    if (t === null) continue;
    await csi.node('NodeUnpublishVolume', { volume_id: id, target_path: t });
    await csi.node('NodeUnpublishVolume', { volume_id: id, target_path: t });
  }
  await csi.node('NodeUnstageVolume', { volume_id: id, staging_target_path: up.staging });
  await csi.node('NodeUnstageVolume', { volume_id: id, staging_target_path: up.staging });
  await csi.controller('ControllerUnpublishVolume', { volume_id: id, node_id: NODE });
}

const DATA = (kind: Kind) => pattern(`lifecycle ${kind}`, MiB);

async function writeData(kind: Kind, rw: string): Promise<void> {
  if (kind === 'block') await writeAt(rw, [4 * MiB], DATA(kind));
  else await writeFile(join(rw, 'data.bin'), DATA(kind), { flush: true });
}
async function readData(kind: Kind, path: string): Promise<Buffer> {
  return kind === 'block' ? readAt(path, 4 * MiB) : readFile(join(path, 'data.bin'));
}
async function writeFails(kind: Kind, ro: string): Promise<void> {
  const codes = kind === 'block' ? ['EROFS', 'EPERM', 'EACCES'] : ['EROFS'];
  await assert.rejects(
    kind === 'block' ? writeAt(ro, [0], Buffer.alloc(4096)) : writeFile(join(ro, 'nope.txt'), 'x'),
    (e: NodeJS.ErrnoException) => codes.includes(e.code ?? ''),
    'a write through the read-only target fails',
  );
}

type Stats = {
  usage: Array<{ unit: string; total: string; available: string; used: string }>;
  volume_condition: { abnormal: boolean; message: string };
};
async function stats(id: string, path: string): Promise<Stats> {
  return csi.node('NodeGetVolumeStats', { volume_id: id, volume_path: path });
}
const totalBytes = (s: Stats) => Number(s.usage.find((u) => u.unit === 'BYTES')?.total);

async function lifeCycle(t: TestContext, kind: Kind): Promise<void> {
  const size = 512 * MiB;
  const id = await createVolume(`lc-${kind}`, kind, size);
  const up = await bringUp(id, `lc-${kind}`, kind, true);

  await writeData(kind, up.rw);
  assert.deepEqual(await readData(kind, up.rw), DATA(kind));
  assert.deepEqual(await readData(kind, up.ro!), DATA(kind), 'the read-only target sees the data');
  await writeFails(kind, up.ro!);

  // Expand while published.
  const before = await stats(id, up.rw);
  assert.equal(before.volume_condition.abnormal, false);
  const grown = await csi.controller('ControllerExpandVolume', {
    volume_id: id,
    capacity_range: { required_bytes: String(1024 * MiB) },
    volume_capability: capOf(kind),
  });
  assert.equal(grown.capacity_bytes, String(1024 * MiB));
  assert.equal(grown.node_expansion_required, true);
  const expand = {
    volume_id: id,
    volume_path: up.rw,
    staging_target_path: up.staging,
    capacity_range: { required_bytes: String(1024 * MiB) },
    volume_capability: capOf(kind),
  };
  if (kind === 'ext4' && !(await hasCapSysResource())) {
    await rejectsCode(csi.node('NodeExpandVolume', expand), status.INTERNAL, /CAP_SYS_RESOURCE/);
    t.diagnostic('no CAP_SYS_RESOURCE on this host: online ext4 growth is checked to fail clearly');
  } else {
    const res = await csi.node('NodeExpandVolume', expand);
    assert.equal(res.capacity_bytes, String(1024 * MiB));
    const after = await stats(id, up.rw);
    if (kind === 'block') assert.equal(totalBytes(after), 1024 * MiB);
    else assert.ok(totalBytes(after) > totalBytes(before) + 400 * MiB, 'statfs shows the file system grew');
    if (kind === 'block') assert.equal(totalBytes(await stats(id, up.ro!)), 1024 * MiB, 'the ro view grew');
  }

  const s = await stats(id, up.ro!);
  assert.equal(s.volume_condition.abnormal, false);
  if (kind !== 'block') assert.ok(s.usage.some((u) => u.unit === 'INODES'));
  await tearDown(id, up);

  // Snapshot, restore, and the data is there.
  const { snapshot } = await csi.controller('CreateSnapshot', { source_volume_id: id, name: `snap-${kind}` });
  assert.equal(snapshot.ready_to_use, true);
  const restored = await createVolume(`lc-${kind}-restored`, kind, 1024 * MiB, {
    snapshot: { snapshot_id: snapshot.snapshot_id },
  });
  const up2 = await bringUp(restored, `lc-${kind}-restored`, kind, false);
  assert.deepEqual(await readData(kind, up2.rw), DATA(kind), 'the restored volume holds the data');
  await tearDown(restored, up2);

  await csi.controller('DeleteVolume', { volume_id: restored });
  await csi.controller('DeleteSnapshot', { snapshot_id: snapshot.snapshot_id });
  await csi.controller('DeleteVolume', { volume_id: id });
}

/** No volume or snapshot file in the backends, no mount, no loop device, no staging record. */
async function assertAllGone(): Promise<void> {
  await assertNothingLeft(sb.dir);
  for (const dir of Object.values(sb.backendDirs)) {
    const left = (await readdir(dir).catch(() => [] as string[])).filter(
      (n) => n.startsWith('volume-') || n.startsWith('snapshot-'),
    );
    assert.deepEqual(left, [], `files left in ${dir}`);
  }
  assert.deepEqual(await readdir(join(sb.env.CAIRN_CSI_NODE_STATE_DIR!, 'staged')).catch(() => []), []);
  const { entries } = await csi.controller('ListVolumes', {});
  assert.deepEqual(entries, []);
}

describe('CSI life cycle through the cairn-csi binary', () => {
  for (const kind of ['ext4', 'xfs', 'block'] as const) {
    it(`create → publish → stage → publish ×2 → I/O → expand → stats → tear down → snapshot → restore → delete (${kind})`, async (t) => {
      await lifeCycle(t, kind);
    });
  }

  it('leaves nothing behind', async () => {
    await assertAllGone();
  });

  it('finishes the cycle after the plugin is killed with SIGKILL after staging', async () => {
    const kind = 'xfs';
    const id = await createVolume('lc-killed', kind, 512 * MiB);
    const up = await bringUp(id, 'lc-killed', kind, true);
    await writeData(kind, up.rw);

    plugin.child.kill('SIGKILL');
    const exit = await plugin.exited;
    assert.equal(exit.signal, 'SIGKILL');
    csi.close();
    await startPluginProcess();

    // The restarted plugin knows what was staged and published from its state directory.
    const cap = capOf(kind);
    await csi.node('NodeStageVolume', {
      volume_id: id,
      publish_context: up.publish_context,
      staging_target_path: up.staging,
      volume_capability: cap,
    });
    await csi.node('NodePublishVolume', {
      volume_id: id,
      publish_context: up.publish_context,
      staging_target_path: up.staging,
      target_path: up.rw,
      volume_capability: cap,
      readonly: false,
    });
    assert.equal((await stats(id, up.ro!)).volume_condition.abnormal, false);
    assert.deepEqual(await readData(kind, up.ro!), DATA(kind));
    await rejectsCode(
      csi.node('NodeUnstageVolume', { volume_id: id, staging_target_path: up.staging }),
      status.FAILED_PRECONDITION,
      /still published/,
    );
    await tearDown(id, up);
    await csi.controller('DeleteVolume', { volume_id: id });
    await assertAllGone();
  });
});
