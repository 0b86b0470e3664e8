import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { mountAt, readMounts } from '../../src/csi/node/mountinfo.js';
import { fileNameFor } from '../../src/csi/node/paths.js';
import { encodePublishContext } from '../../src/csi/node/publish-context.js';
import { pattern, readAt, writeAt } from '../harness/blockdev.js';
import { run } from '../harness/exec.js';
import { type TempDir, tempDir } from '../harness/tmp.js';
import {
  assertNothingLeft,
  blockCap,
  cleanUpUnder,
  type GrpcCaller,
  hasCapSysResource,
  loopsBehind,
  loopsLeft,
  mountCap,
  mountsUnder,
  nodeDeps,
  rejectsGrpc,
  startNodeServer,
} from './node-harness.js';

const MiB = 1024 * 1024;
let dir: TempDir;
let node: GrpcCaller;
let stop: () => Promise<void>;
let stateDir: string;

before(async () => {
  dir = await tempDir('cairn-csi-node-');
  stateDir = join(dir.path, 'state');
  ({ node, stop } = await startNodeServer(dir.path, nodeDeps(stateDir)));
});
after(async () => {
  await stop?.();
  await cleanUpUnder(dir.path);
  await dir.cleanup();
});

interface Vol {
  id: string;
  file: string;
  ctx: Record<string, string>;
  staging: string;
  target(name: string): string;
}

/** A "volume": a sparse file exported as a local connection, and the CO's paths for it. */
async function volume(size = 512 * MiB, over: Record<string, unknown> = {}): Promise<Vol> {
  const id = `vol-${randomUUID()}`;
  const file = join(dir.path, 'pool', `volume-${id}`);
  await mkdir(join(dir.path, 'pool'), { recursive: true });
  await writeFile(file, '');
  await run(['truncate', '--size', String(size), file]);
  const staging = join(dir.path, 'staging', id);
  await mkdir(staging, { recursive: true }); // the CO creates the staging directory
  await mkdir(join(dir.path, 'pods', id), { recursive: true }); // and the targets' parent
  return {
    id,
    file,
    ctx: encodePublishContext({
      protocol: 'local',
      data: { path: file, host: hostname(), readOnly: false, ...over },
    }),
    staging,
    target: (name) => join(dir.path, 'pods', id, name),
  };
}

const stageReq = (v: Vol, cap: object = mountCap('ext4')) => ({
  volume_id: v.id,
  publish_context: v.ctx,
  staging_target_path: v.staging,
  volume_capability: cap,
});
const publishReq = (v: Vol, target: string, cap: object = mountCap('ext4'), readonly = false) => ({
  volume_id: v.id,
  publish_context: v.ctx,
  staging_target_path: v.staging,
  target_path: target,
  volume_capability: cap,
  readonly,
});

async function fsTypeAt(path: string): Promise<string | undefined> {
  return mountAt(await readMounts(), path)?.fsType;
}

describe('NodeGetCapabilities and NodeGetInfo', () => {
  it('reports the node capabilities', async () => {
    const res = await node.call<{ capabilities: Array<{ rpc: { type: string } }> }>(
      'NodeGetCapabilities',
      {},
    );
    assert.deepEqual(res.capabilities.map((c) => c.rpc.type).sort(), [
      'EXPAND_VOLUME',
      'GET_VOLUME_STATS',
      'SINGLE_NODE_MULTI_WRITER',
      'STAGE_UNSTAGE_VOLUME',
      'VOLUME_CONDITION',
    ]);
  });
  it('reports the node id, volume limit and topology', async () => {
    const res = await node.call<Record<string, unknown>>('NodeGetInfo', {});
    assert.equal(res.node_id, 'node-a');
    assert.equal(res.max_volumes_per_node, '0');
    assert.deepEqual(res.accessible_topology, { segments: { 'cairn.io/host': 'node-a' } });
  });
});

describe('NodeStageVolume and NodeUnstageVolume', () => {
  it('refuses requests with a missing or bad field, naming it', async () => {
    const v = await volume(64 * MiB);
    const ok = stageReq(v);
    await rejectsGrpc(
      node.call('NodeStageVolume', { ...ok, volume_id: '' }),
      status.INVALID_ARGUMENT,
      'volume_id',
    );
    await rejectsGrpc(
      node.call('NodeStageVolume', { ...ok, staging_target_path: '' }),
      status.INVALID_ARGUMENT,
      'staging_target_path',
    );
    await rejectsGrpc(
      node.call('NodeStageVolume', { ...ok, volume_capability: null }),
      status.INVALID_ARGUMENT,
      'volume_capability',
    );
    for (const bad of ['relative/x', `${v.staging}/../x`, `${v.staging}/`])
      await rejectsGrpc(
        node.call('NodeStageVolume', { ...ok, staging_target_path: bad }),
        status.INVALID_ARGUMENT,
        'staging_target_path',
      );
    await rejectsGrpc(
      node.call('NodeStageVolume', { ...ok, publish_context: {} }),
      status.INVALID_ARGUMENT,
      'cairn.io/protocol',
    );
    await rejectsGrpc(
      node.call('NodeStageVolume', { ...ok, volume_capability: mountCap('ntfs') }),
      status.INVALID_ARGUMENT,
      'fs_type',
    );
    await rejectsGrpc(
      node.call('NodeStageVolume', {
        ...ok,
        volume_capability: mountCap('ext4', 'SINGLE_NODE_WRITER', ['a;b']),
      }),
      status.INVALID_ARGUMENT,
      'mount_flags',
    );
    const elsewhere = {
      ...v,
      ctx: encodePublishContext({ protocol: 'local', data: { path: v.file, host: 'other-host' } }),
    };
    await rejectsGrpc(
      node.call('NodeStageVolume', stageReq(elsewhere)),
      status.FAILED_PRECONDITION,
      'other-host',
    );
    const nfs = { ...v, ctx: { 'cairn.io/protocol': 'nfs', 'cairn.io/data': '{}' } };
    await rejectsGrpc(node.call('NodeStageVolume', stageReq(nfs)), status.INVALID_ARGUMENT, 'nfs');
    assert.deepEqual(await loopsLeft(dir.path), [], 'nothing was attached');
  });

  it('stages ext4 once, is idempotent, and refuses another capability or path', async () => {
    const v = await volume(64 * MiB);
    await node.call('NodeStageVolume', stageReq(v, mountCap('ext4', 'SINGLE_NODE_WRITER', ['noatime'])));
    const first = mountAt(await readMounts(), v.staging);
    assert.equal(first?.fsType, 'ext4');
    assert.ok(first?.options.includes('noatime'));
    await node.call('NodeStageVolume', stageReq(v, mountCap('ext4', 'SINGLE_NODE_WRITER', ['noatime'])));
    assert.equal(mountAt(await readMounts(), v.staging)?.mountId, first?.mountId, 'not mounted twice');
    await rejectsGrpc(node.call('NodeStageVolume', stageReq(v, mountCap('xfs'))), status.ALREADY_EXISTS);
    await rejectsGrpc(node.call('NodeStageVolume', stageReq(v, blockCap())), status.ALREADY_EXISTS);
    const other = join(dir.path, 'staging', 'other');
    await mkdir(other, { recursive: true });
    await rejectsGrpc(
      node.call('NodeStageVolume', {
        ...stageReq(v, mountCap('ext4', 'SINGLE_NODE_WRITER', ['noatime'])),
        staging_target_path: other,
      }),
      status.FAILED_PRECONDITION,
      'already staged',
    );
    const records = await readdir(join(stateDir, 'staged'));
    const rec = join(stateDir, 'staged', `${fileNameFor(v.id)}.json`);
    assert.ok(records.includes(`${fileNameFor(v.id)}.json`));
    assert.equal((await stat(rec)).mode & 0o777, 0o600);

    await writeFile(join(v.staging, 'kept.txt'), 'kept');
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    assert.equal(mountAt(await readMounts(), v.staging), null);
    await assert.rejects(stat(rec), { code: 'ENOENT' });
    assert.deepEqual(await loopsLeft(v.file), []);

    // Staged again: the file system (and the file) are still there, never formatted twice.
    await node.call('NodeStageVolume', stageReq(v));
    assert.equal(await readFile(join(v.staging, 'kept.txt'), 'utf8'), 'kept');
    // Another fs type than the one on the device: refused, and the data is left alone.
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    await rejectsGrpc(
      node.call('NodeStageVolume', stageReq(v, mountCap('btrfs'))),
      status.FAILED_PRECONDITION,
      'ext4',
    );
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    await node.call('NodeStageVolume', stageReq(v, mountCap('', 'SINGLE_NODE_WRITER')));
    assert.equal(await readFile(join(v.staging, 'kept.txt'), 'utf8'), 'kept', 'no fs_type: mounted as it is');
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    assert.deepEqual(await loopsLeft(v.file), []);
  });

  it('formats xfs and btrfs, and the default file system when none is named', async () => {
    for (const fs of ['xfs', 'btrfs', ''] as const) {
      const v = await volume(512 * MiB);
      await node.call('NodeStageVolume', stageReq(v, mountCap(fs)));
      assert.equal(await fsTypeAt(v.staging), fs || 'ext4');
      await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    }
  });

  it('never formats a volume holding data it does not recognise', async () => {
    const v = await volume(64 * MiB);
    const data = pattern('database pages', 8192);
    await writeAt(v.file, [0], data);
    await rejectsGrpc(node.call('NodeStageVolume', stageReq(v)), status.FAILED_PRECONDITION, 'not zeros');
    assert.deepEqual(await readAt(v.file, 0, 8192), data);
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    assert.deepEqual(await loopsLeft(v.file), [], 'the failed stage is undone by unstage');
  });

  it('stages a block volume as its device on a file in the staging directory', async () => {
    const v = await volume(32 * MiB);
    await node.call('NodeStageVolume', stageReq(v, blockCap()));
    await node.call('NodeStageVolume', stageReq(v, blockCap()));
    const file = join(v.staging, fileNameFor(v.id));
    assert.ok((await stat(file)).isBlockDevice());
    assert.equal((await stat(file)).size, 0);
    assert.deepEqual(await mountsUnder(v.staging), [file]);
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    await assert.rejects(stat(file), { code: 'ENOENT' });
    assert.deepEqual(await loopsLeft(v.file), []);
  });

  it('finds its mounts through a symlinked kubelet directory', async () => {
    const v = await volume(64 * MiB);
    const real = join(dir.path, 'real-kubelet');
    await mkdir(join(real, 'staging'), { recursive: true });
    await symlink(real, join(dir.path, 'kubelet-link'));
    const staging = join(dir.path, 'kubelet-link', 'staging');
    const req = { ...stageReq(v), staging_target_path: staging };
    await node.call('NodeStageVolume', req);
    await node.call('NodeStageVolume', req);
    assert.deepEqual(await mountsUnder(real), [join(real, 'staging')], 'mounted once');
    const s = await node.call<{ volume_condition: { abnormal: boolean } }>('NodeGetVolumeStats', {
      volume_id: v.id,
      volume_path: staging,
    });
    assert.equal(s.volume_condition.abnormal, false);
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: staging });
    assert.deepEqual(await mountsUnder(real), []);
    assert.deepEqual(await loopsLeft(v.file), []);
  });

  it('unstages nothing staged, or another path, with OK', async () => {
    await node.call('NodeUnstageVolume', {
      volume_id: 'never-staged',
      staging_target_path: join(dir.path, 'nope'),
    });
    await rejectsGrpc(
      node.call('NodeUnstageVolume', { volume_id: 'x', staging_target_path: '' }),
      status.INVALID_ARGUMENT,
      'staging_target_path',
    );
  });

  it('serializes concurrent stages of one volume: one format, one mount', async () => {
    const v = await volume(64 * MiB);
    await Promise.all([1, 2, 3].map(() => node.call('NodeStageVolume', stageReq(v))));
    assert.deepEqual(await mountsUnder(v.staging), [v.staging]);
    assert.equal((await loopsBehind(v.file)).length, 1);
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
  });
});

describe('NodePublishVolume and NodeUnpublishVolume', () => {
  it('publishes read-write and read-only targets, idempotently', async () => {
    const cap = mountCap('ext4', 'SINGLE_NODE_MULTI_WRITER');
    const v = await volume(64 * MiB);
    await node.call('NodeStageVolume', stageReq(v, cap));
    const rw = v.target('rw');
    const ro = v.target('ro');
    await node.call('NodePublishVolume', publishReq(v, rw, cap));
    await node.call('NodePublishVolume', publishReq(v, rw, cap));
    await node.call('NodePublishVolume', publishReq(v, ro, cap, true));
    await node.call('NodePublishVolume', publishReq(v, ro, cap, true));
    assert.deepEqual((await mountsUnder(v.target('..').replace(/\/\.\.$/, ''))).length, 2);
    await writeFile(join(rw, 'data.txt'), 'through rw');
    assert.equal(await readFile(join(ro, 'data.txt'), 'utf8'), 'through rw');
    await assert.rejects(writeFile(join(ro, 'x.txt'), 'x'), { code: 'EROFS' });

    await rejectsGrpc(node.call('NodePublishVolume', publishReq(v, ro, cap, false)), status.ALREADY_EXISTS);
    await rejectsGrpc(
      node.call(
        'NodePublishVolume',
        publishReq(v, rw, mountCap('ext4', 'SINGLE_NODE_MULTI_WRITER', ['noexec'])),
      ),
      status.ALREADY_EXISTS,
    );
    await rejectsGrpc(
      node.call('NodePublishVolume', publishReq(v, v.target('blk'), blockCap('SINGLE_NODE_MULTI_WRITER'))),
      status.FAILED_PRECONDITION,
      'staged with',
    );
    await rejectsGrpc(
      node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging }),
      status.FAILED_PRECONDITION,
      rw,
    );

    for (const t of [rw, ro]) {
      await node.call('NodeUnpublishVolume', { volume_id: v.id, target_path: t });
      await node.call('NodeUnpublishVolume', { volume_id: v.id, target_path: t });
      await assert.rejects(stat(t), { code: 'ENOENT' }, 'the target is removed');
    }
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    assert.deepEqual(await loopsLeft(v.file), []);
  });

  it('allows one target for single-writer modes and refuses what was not staged', async () => {
    const v = await volume(64 * MiB);
    const cap = mountCap('ext4', 'SINGLE_NODE_WRITER');
    await rejectsGrpc(
      node.call('NodePublishVolume', publishReq(v, v.target('a'), cap)),
      status.FAILED_PRECONDITION,
      'not staged',
    );
    await rejectsGrpc(
      node.call('NodePublishVolume', { ...publishReq(v, v.target('a'), cap), staging_target_path: '' }),
      status.FAILED_PRECONDITION,
      'staging_target_path',
    );
    await rejectsGrpc(
      node.call('NodePublishVolume', { ...publishReq(v, v.target('a'), cap), target_path: '' }),
      status.INVALID_ARGUMENT,
      'target_path',
    );
    await rejectsGrpc(
      node.call('NodePublishVolume', { ...publishReq(v, v.target('a'), cap), volume_capability: null }),
      status.INVALID_ARGUMENT,
      'volume_capability',
    );
    await node.call('NodeStageVolume', stageReq(v, cap));
    await node.call('NodePublishVolume', publishReq(v, v.target('a'), cap));
    await rejectsGrpc(
      node.call('NodePublishVolume', publishReq(v, v.target('b'), cap)),
      status.FAILED_PRECONDITION,
      'one target',
    );
    await node.call('NodeUnpublishVolume', { volume_id: v.id, target_path: v.target('a') });
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
  });

  it('publishes a block volume on files, read-only through a read-only device', async () => {
    const cap = blockCap('SINGLE_NODE_MULTI_WRITER');
    const v = await volume(32 * MiB);
    await node.call('NodeStageVolume', stageReq(v, cap));
    const rw = v.target('rw');
    const ro = v.target('ro');
    await node.call('NodePublishVolume', publishReq(v, rw, cap));
    await node.call('NodePublishVolume', publishReq(v, ro, cap, true));
    await node.call('NodePublishVolume', publishReq(v, ro, cap, true));
    assert.ok((await stat(rw)).isBlockDevice() && (await stat(ro)).isBlockDevice());
    const data = pattern('block data', MiB);
    await writeAt(rw, [MiB], data);
    assert.deepEqual(await readAt(ro, MiB), data);
    await assert.rejects(writeAt(ro, [0], data), (e: NodeJS.ErrnoException) =>
      ['EROFS', 'EPERM', 'EACCES'].includes(e.code ?? ''),
    );
    for (const t of [rw, ro]) await node.call('NodeUnpublishVolume', { volume_id: v.id, target_path: t });
    await assert.rejects(stat(ro), { code: 'ENOENT' });
    assert.equal((await loopsLeft(v.file, 1)).length, 1, 'the read-only view is gone');
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    assert.deepEqual(await loopsLeft(v.file), []);
  });

  it('unpublishes what is not published with OK', async () => {
    await node.call('NodeUnpublishVolume', {
      volume_id: 'x',
      target_path: join(dir.path, 'pods', 'nothing'),
    });
    await rejectsGrpc(
      node.call('NodeUnpublishVolume', { volume_id: 'x', target_path: 'a/b' }),
      status.INVALID_ARGUMENT,
    );
  });
});

describe('NodeGetVolumeStats and NodeExpandVolume', () => {
  it('reports usage of mounts and block devices, and an abnormal condition when a mount is gone', async () => {
    const v = await volume(64 * MiB);
    const cap = mountCap('ext4');
    await node.call('NodeStageVolume', stageReq(v, cap));
    const t = v.target('t');
    await node.call('NodePublishVolume', publishReq(v, t, cap));
    type Stats = {
      usage: Array<{ unit: string; total: string; available: string; used: string }>;
      volume_condition: { abnormal: boolean; message: string };
    };
    const s = await node.call<Stats>('NodeGetVolumeStats', {
      volume_id: v.id,
      volume_path: t,
      staging_target_path: v.staging,
    });
    const bytes = s.usage.find((u) => u.unit === 'BYTES')!;
    const inodes = s.usage.find((u) => u.unit === 'INODES')!;
    assert.ok(Number(bytes.total) > 50 * MiB && Number(bytes.total) <= 64 * MiB);
    assert.ok(Number(bytes.available) > 0 && Number(bytes.used) > 0);
    assert.ok(Number(inodes.total) > 0 && Number(inodes.used) > 0);
    assert.equal(s.volume_condition.abnormal, false);

    await rejectsGrpc(
      node.call('NodeGetVolumeStats', { volume_id: v.id, volume_path: join(dir.path, 'missing') }),
      status.NOT_FOUND,
    );
    await rejectsGrpc(
      node.call('NodeGetVolumeStats', { volume_id: v.id, volume_path: '' }),
      status.INVALID_ARGUMENT,
      'volume_path',
    );
    await rejectsGrpc(
      node.call('NodeGetVolumeStats', { volume_id: v.id, volume_path: dir.path }),
      status.NOT_FOUND,
    );

    await run(['umount', t]); // behind the plugin's back
    const gone = await node.call<Stats>('NodeGetVolumeStats', { volume_id: v.id, volume_path: t });
    assert.equal(gone.volume_condition.abnormal, true);
    assert.match(gone.volume_condition.message, /not mounted/);
    await node.call('NodeUnpublishVolume', { volume_id: v.id, target_path: t });
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });

    const b = await volume(32 * MiB);
    await node.call('NodeStageVolume', stageReq(b, blockCap()));
    await node.call('NodePublishVolume', publishReq(b, b.target('t'), blockCap()));
    for (const path of [b.target('t'), b.staging]) {
      const bs = await node.call<Stats>('NodeGetVolumeStats', { volume_id: b.id, volume_path: path });
      assert.equal(bs.usage[0]?.unit, 'BYTES');
      assert.equal(bs.usage[0]?.total, String(32 * MiB));
      assert.equal(bs.volume_condition.abnormal, false);
    }
    await node.call('NodeUnpublishVolume', { volume_id: b.id, target_path: b.target('t') });
    await node.call('NodeUnstageVolume', { volume_id: b.id, staging_target_path: b.staging });
  });

  for (const fs of ['xfs', 'btrfs', 'ext4'] as const) {
    it(`grows a published ${fs} volume online`, async (t) => {
      const v = await volume(512 * MiB);
      const cap = mountCap(fs);
      await node.call('NodeStageVolume', stageReq(v, cap));
      const target = v.target('t');
      await node.call('NodePublishVolume', publishReq(v, target, cap));
      const total = async () => {
        const s = await node.call<{ usage: Array<{ unit: string; total: string }> }>('NodeGetVolumeStats', {
          volume_id: v.id,
          volume_path: target,
        });
        return Number(s.usage.find((u) => u.unit === 'BYTES')!.total);
      };
      const before = await total();
      await run(['truncate', '--size', String(1024 * MiB), v.file]); // what ControllerExpandVolume does
      const req = {
        volume_id: v.id,
        volume_path: target,
        staging_target_path: v.staging,
        capacity_range: { required_bytes: String(1024 * MiB), limit_bytes: '0' },
        volume_capability: cap,
      };
      if (fs === 'ext4' && !(await hasCapSysResource())) {
        await rejectsGrpc(node.call('NodeExpandVolume', req), status.INTERNAL, 'CAP_SYS_RESOURCE');
        t.diagnostic('no CAP_SYS_RESOURCE on this host: online ext4 growth fails with a clear message');
      } else {
        const res = await node.call<{ capacity_bytes: string }>('NodeExpandVolume', req);
        assert.equal(res.capacity_bytes, String(1024 * MiB));
        await node.call('NodeExpandVolume', req); // idempotent
        assert.ok((await total()) > before + 400 * MiB, 'statfs shows the file system grew');
      }
      await rejectsGrpc(
        node.call('NodeExpandVolume', {
          ...req,
          capacity_range: { required_bytes: String(2048 * MiB), limit_bytes: '0' },
        }),
        status.UNAVAILABLE,
        'ControllerExpandVolume',
      );
      await rejectsGrpc(
        node.call('NodeExpandVolume', { ...req, volume_capability: blockCap() }),
        status.INVALID_ARGUMENT,
      );
      await node.call('NodeUnpublishVolume', { volume_id: v.id, target_path: target });
      await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    });
  }

  it('rescans a block volume and refuses unknown volumes', async () => {
    const v = await volume(32 * MiB);
    await node.call('NodeStageVolume', stageReq(v, blockCap()));
    await run(['truncate', '--size', String(48 * MiB), v.file]);
    const res = await node.call<{ capacity_bytes: string }>('NodeExpandVolume', {
      volume_id: v.id,
      volume_path: v.staging,
    });
    assert.equal(res.capacity_bytes, String(48 * MiB));
    assert.equal((await stat(join(v.staging, fileNameFor(v.id)))).isBlockDevice(), true);
    await rejectsGrpc(
      node.call('NodeExpandVolume', { volume_id: 'unknown', volume_path: v.staging }),
      status.NOT_FOUND,
    );
    await rejectsGrpc(
      node.call('NodeExpandVolume', { volume_id: v.id, volume_path: join(dir.path, 'nope') }),
      status.NOT_FOUND,
    );
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
  });
});

describe('a restarted plugin', () => {
  it('unpublishes and unstages from its state directory', async () => {
    const cap = mountCap('xfs');
    const v = await volume(512 * MiB);
    await node.call('NodeStageVolume', stageReq(v, cap));
    await node.call('NodePublishVolume', publishReq(v, v.target('t'), cap));
    await stop();
    ({ node, stop } = await startNodeServer(dir.path, nodeDeps(stateDir)));
    await node.call('NodePublishVolume', publishReq(v, v.target('t'), cap)); // still idempotent
    await node.call('NodeUnpublishVolume', { volume_id: v.id, target_path: v.target('t') });
    await node.call('NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    assert.deepEqual(await loopsLeft(v.file), []);
  });

  it('leaves nothing behind', async () => {
    await assertNothingLeft(dir.path);
    assert.deepEqual(await readdir(join(stateDir, 'staged')), []);
  });
});
