import assert from 'node:assert/strict';
import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ACCESS_MODES, parseCapability, sameCapability } from '../../src/csi/node/capability.js';
import { formatIfBlank, growFilesystem, probe } from '../../src/csi/node/format.js';
import { bindMount, mountDevice, unmount } from '../../src/csi/node/mount.js';
import { isReadOnly, mountAt, parseMountinfo, readMounts } from '../../src/csi/node/mountinfo.js';
import { checkPath, fileNameFor } from '../../src/csi/node/paths.js';
import { decodePublishContext, encodePublishContext } from '../../src/csi/node/publish-context.js';
import { type StagedVolume, StagingRecords } from '../../src/csi/node/records.js';
import { blockDeviceSize, devno, fsUsage } from '../../src/csi/node/stats.js';
import { attachReadOnlyView, detachView, isViewOf } from '../../src/csi/node/views.js';
import { createRunner } from '../../src/exec/runner.js';
import { ErrorCode } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { rejectsWith, throwsWith } from '../harness/assert.js';
import { pattern, readAt, writeAt } from '../harness/blockdev.js';
import { run } from '../harness/exec.js';
import { type TempDir, tempDir } from '../harness/tmp.js';
import { cleanUpUnder, hasCapSysResource, loopsBehind } from './node-harness.js';

const MiB = 1024 * 1024;
const runner = createRunner({ logger: silentLogger });
let dir: TempDir;

before(async () => {
  dir = await tempDir('cairn-csi-helpers-');
});
after(async () => {
  await cleanUpUnder(dir.path);
  await dir.cleanup();
});

/** A sparse image of `size` bytes under the test dir, attached as a loop device. */
async function loop(name: string, size = 512 * MiB): Promise<{ image: string; device: string }> {
  const image = join(dir.path, `${name}.img`);
  await writeFile(image, '');
  await run(['truncate', '--size', String(size), image]);
  const device = (await run(['losetup', '--find', '--show', image])).trim();
  return { image, device };
}

describe('paths and names from requests', () => {
  it('accepts absolute normalized paths only', () => {
    assert.equal(checkPath('p', '/var/lib/kubelet/x'), '/var/lib/kubelet/x');
    for (const bad of ['', 'rel/path', '/a/../b', '/a/./b', '/a//b', '/a/', '/', '/a\u0000b', '/a\nb', '..'])
      throwsWith(() => checkPath('target_path', bad), ErrorCode.InvalidArgument, 'target_path');
    throwsWith(() => checkPath('p', `/${'a'.repeat(5000)}`), ErrorCode.InvalidArgument, 'longer');
  });

  it('names files after plain volume ids and hashes the rest', () => {
    assert.equal(fileNameFor('vol-123_a.b'), 'v-vol-123_a.b');
    assert.match(fileNameFor('../../etc'), /^h-[0-9a-f]{64}$/);
    assert.match(fileNameFor('a/b'), /^h-[0-9a-f]{64}$/);
    assert.notEqual(fileNameFor('a/b'), fileNameFor('a/c'));
  });

  it('round-trips connection info through publish_context and names a missing key', () => {
    const info = { protocol: 'local', data: { path: '/srv/v', host: 'h', readOnly: false } };
    assert.deepEqual(decodePublishContext(encodePublishContext(info)), info);
    throwsWith(() => decodePublishContext({}), ErrorCode.InvalidArgument, 'cairn.io/protocol');
    throwsWith(
      () => decodePublishContext({ 'cairn.io/protocol': 'local', 'cairn.io/data': '{' }),
      ErrorCode.InvalidArgument,
      'cairn.io/data',
    );
    throwsWith(
      () => decodePublishContext({ 'cairn.io/protocol': 'local', 'cairn.io/data': '[1]' }),
      ErrorCode.InvalidArgument,
    );
  });
});

describe('volume capabilities', () => {
  const mode = (m: string) => ({ mode: m });
  it('parses block and mount access and compares them', () => {
    const a = parseCapability('c', {
      mount: { fs_type: 'xfs', mount_flags: ['noatime,nodev'] },
      access_mode: mode('SINGLE_NODE_WRITER'),
    });
    assert.deepEqual(a, {
      access: 'mount',
      fsType: 'xfs',
      mountFlags: ['noatime', 'nodev'],
      mode: 'SINGLE_NODE_WRITER',
    });
    const b = parseCapability('c', {
      mount: { fs_type: 'xfs', mount_flags: ['nodev', 'noatime'] },
      access_mode: mode('SINGLE_NODE_WRITER'),
    });
    assert.ok(sameCapability(a, b), 'mount flags compare as a set');
    const blk = parseCapability('c', { block: {}, access_type: 'block', access_mode: { mode: 7 } });
    assert.deepEqual(blk, { access: 'block', fsType: null, mountFlags: [], mode: ACCESS_MODES[7] });
    assert.ok(!sameCapability(a, blk));
  });

  it('refuses what it cannot honour, naming the field but never a flag value', () => {
    throwsWith(
      () => parseCapability('volume_capability', null),
      ErrorCode.InvalidArgument,
      'volume_capability',
    );
    throwsWith(() => parseCapability('c', { block: {} }), ErrorCode.InvalidArgument, 'access_mode');
    throwsWith(
      () => parseCapability('c', { access_mode: mode('SINGLE_NODE_WRITER') }),
      ErrorCode.InvalidArgument,
      'block or mount',
    );
    throwsWith(
      () => parseCapability('c', { mount: { fs_type: 'ntfs' }, access_mode: mode('SINGLE_NODE_WRITER') }),
      ErrorCode.InvalidArgument,
      'fs_type',
    );
    for (const flag of [
      'a;b',
      'x y',
      '$(reboot)',
      'a`b`',
      'q"',
      'bind',
      'remount',
      'x-mount.mkdir',
      'loop=/dev/x',
    ]) {
      const err = throwsWith(
        () =>
          parseCapability('c', {
            mount: { mount_flags: ['noatime', flag] },
            access_mode: mode('SINGLE_NODE_WRITER'),
          }),
        ErrorCode.InvalidArgument,
        'mount_flags[1]',
      );
      if (/[^A-Za-z0-9_.:=@+/-]/.test(flag)) assert.ok(!err.message.includes(flag), 'the flag is not quoted');
    }
    throwsWith(
      () =>
        parseCapability('c', {
          mount: { volume_mount_group: '1000' },
          access_mode: mode('SINGLE_NODE_WRITER'),
        }),
      ErrorCode.InvalidArgument,
      'volume_mount_group',
    );
    throwsWith(
      () => parseCapability('c', { mount: {}, access_mode: mode('MULTI_NODE_MULTI_WRITER') }),
      ErrorCode.InvalidState,
      'block',
    );
  });
});

describe('mountinfo', () => {
  it('parses optional fields and octal escapes', () => {
    const text = [
      '36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
      '37 36 7:3 / /srv/x ro,relatime shared:5 unbindable - xfs /dev/loop3 ro,attr2',
      'garbage',
    ].join('\n');
    const [a, b, ...rest] = parseMountinfo(text);
    assert.equal(rest.length, 0);
    assert.equal(a!.mountPoint, '/mnt/with space');
    assert.equal(a!.root, '/mnt1');
    assert.equal(a!.fsType, 'ext3');
    assert.ok(!isReadOnly(a!));
    assert.equal(b!.devno, '7:3');
    assert.equal(b!.source, '/dev/loop3');
    assert.ok(isReadOnly(b!));
  });

  it('decodes device numbers as glibc does', () => {
    assert.equal(devno((7n << 8n) | 3n), '7:3');
    // major 259, minor 300 (large numbers use the high bits)
    const rdev = ((259n & 0xfffn) << 8n) | (300n & 0xffn) | ((300n & ~0xffn) << 12n);
    assert.equal(devno(rdev), '259:300');
  });
});

describe('format only a blank device', () => {
  it('formats a blank device once, then finds its file system', async () => {
    const { device } = await loop('blank');
    assert.deepEqual(await probe(runner, device), { blank: true });
    assert.deepEqual(await formatIfBlank(runner, device, null, 'ext4', { readOnly: false }), {
      fsType: 'ext4',
      formatted: true,
    });
    const found = await probe(runner, device);
    assert.ok(!found.blank && found.fields.TYPE === 'ext4');
    const uuid = !found.blank ? found.fields.UUID : '';
    assert.deepEqual(await formatIfBlank(runner, device, 'ext4', 'xfs', { readOnly: false }), {
      fsType: 'ext4',
      formatted: false,
    });
    const again = await probe(runner, device);
    assert.equal(!again.blank && again.fields.UUID, uuid, 'not formatted a second time');
  });

  it('never formats a device holding another file system, a partition table or raw data', async () => {
    const { device: xfs } = await loop('xfs');
    await run(['mkfs.xfs', '-q', xfs]);
    await rejectsWith(
      formatIfBlank(runner, xfs, 'ext4', 'ext4', { readOnly: false }),
      ErrorCode.InvalidState,
      'xfs',
      'left as it is',
    );
    assert.deepEqual(await formatIfBlank(runner, xfs, null, 'ext4', { readOnly: false }), {
      fsType: 'xfs',
      formatted: false,
    });

    const { device: parted } = await loop('parted', 64 * MiB);
    await run(['sfdisk', '--quiet', parted], {}).catch(async () => {
      // sfdisk needs a script on stdin; write a minimal MBR signature by hand instead.
      await writeAt(parted, [510], Buffer.from([0x55, 0xaa]));
    });
    await rejectsWith(
      formatIfBlank(runner, parted, null, 'ext4', { readOnly: false }),
      ErrorCode.InvalidState,
    );

    const { device: raw } = await loop('raw', 64 * MiB);
    const data = pattern('raw data', MiB);
    await writeAt(raw, [4096], data.subarray(0, 4096));
    await rejectsWith(
      formatIfBlank(runner, raw, null, 'ext4', { readOnly: false }),
      ErrorCode.InvalidState,
      'not zeros',
    );
    assert.deepEqual(await readAt(raw, 4096, 4096), data.subarray(0, 4096), 'raw data untouched');
  });

  it('refuses to format a blank read-only volume', async () => {
    const { device } = await loop('blank-ro', 64 * MiB);
    await rejectsWith(
      formatIfBlank(runner, device, null, 'ext4', { readOnly: true }),
      ErrorCode.InvalidState,
      'read-only',
    );
    assert.deepEqual(await probe(runner, device), { blank: true });
  });
});

describe('mounts, bind mounts and stats', () => {
  it('mounts, bind-mounts read-write and read-only, grows, and unmounts idempotently', async () => {
    const { device } = await loop('mnt', 512 * MiB);
    await formatIfBlank(runner, device, 'ext4', 'ext4', { readOnly: false });
    const stage = join(dir.path, 'stage');
    const rw = join(dir.path, 'rw');
    const ro = join(dir.path, 'ro');
    for (const d of [stage, rw, ro]) await mkdir(d);
    await mountDevice(runner, device, stage, 'ext4', ['noatime']);
    await bindMount(runner, stage, rw, false);
    await bindMount(runner, stage, ro, true);
    const mounts = await readMounts();
    assert.ok(mountAt(mounts, stage)?.options.includes('noatime'));
    assert.ok(!isReadOnly(mountAt(mounts, rw)!));
    assert.ok(isReadOnly(mountAt(mounts, ro)!));

    await writeFile(join(rw, 'hello.txt'), 'hello');
    assert.equal(await readFile(join(ro, 'hello.txt'), 'utf8'), 'hello');
    await assert.rejects(writeFile(join(ro, 'nope.txt'), 'x'), { code: 'EROFS' });

    const before = await fsUsage(stage);
    assert.ok(BigInt(before.bytes.total) > 400n * BigInt(MiB));
    assert.ok(BigInt(before.bytes.available) <= BigInt(before.bytes.total));
    assert.ok(BigInt(before.inodes.used) > 0n);

    for (const d of [ro, rw, stage]) {
      await unmount(runner, d);
      await unmount(runner, d);
    }
    assert.equal(mountAt(await readMounts(), stage), null);
    await run(['losetup', '--detach', device]);
  });

  for (const fsType of ['ext4', 'xfs', 'btrfs'] as const) {
    it(`grows a mounted ${fsType} file system to its device`, async (t) => {
      const { image, device } = await loop(`grow-${fsType}`, 512 * MiB);
      const mnt = join(dir.path, `grow-${fsType}`);
      await mkdir(mnt);
      await formatIfBlank(runner, device, fsType, 'ext4', { readOnly: false });
      await mountDevice(runner, device, mnt, fsType, fsType === 'xfs' ? ['nouuid'] : []);
      try {
        const before = BigInt((await fsUsage(mnt)).bytes.total);
        await run(['truncate', '--size', String(1024 * MiB), image]);
        await run(['losetup', '--set-capacity', device]);
        if (fsType === 'ext4' && !(await hasCapSysResource())) {
          // Online ext4 growth is an ioctl that needs CAP_SYS_RESOURCE, which this host withholds.
          await rejectsWith(
            growFilesystem(runner, fsType, device, mnt),
            ErrorCode.BackendFailure,
            'CAP_SYS_RESOURCE',
          );
          t.diagnostic('no CAP_SYS_RESOURCE here: online ext4 growth checked to fail with a clear message');
          return;
        }
        await growFilesystem(runner, fsType, device, mnt);
        const after = BigInt((await fsUsage(mnt)).bytes.total);
        assert.ok(after > before + 400n * BigInt(MiB), `the fs grew online (${before} → ${after})`);
        await growFilesystem(runner, fsType, device, mnt); // nothing to grow: still fine
      } finally {
        await unmount(runner, mnt);
        await run(['losetup', '--detach', device]);
      }
    });
  }

  it('bind-mounts a device onto a file, reports its size, and a read-only view refuses writes', async () => {
    const { device } = await loop('blk', 64 * MiB);
    const file = join(dir.path, 'blk-file');
    const target = join(dir.path, 'blk-ro');
    await writeFile(file, '');
    await writeFile(target, '');
    await bindMount(runner, device, file, false);
    assert.ok((await stat(file)).isBlockDevice());
    assert.equal(await blockDeviceSize(file), 64 * MiB);
    assert.equal(await blockDeviceSize(dir.path), null);

    const view = await attachReadOnlyView(runner, device);
    assert.ok(await isViewOf(view, device));
    await bindMount(runner, view, target, true);
    assert.equal(await blockDeviceSize(target), 64 * MiB);
    const data = pattern('blk', 4096);
    await writeAt(file, [0], data);
    assert.deepEqual(await readAt(target, 0, 4096), data, 'the view shows the device');
    const fh = await open(target, 'r+').catch((e: NodeJS.ErrnoException) => e);
    if (!(fh instanceof Error)) {
      const err = await fh
        .write(Buffer.alloc(512), 0, 512, 0)
        .then(() => fh.sync())
        .then(
          () => null,
          (e: NodeJS.ErrnoException) => e,
        );
      await fh.close();
      assert.ok(err !== null, 'a write through the read-only view fails');
    } else {
      assert.ok(['EROFS', 'EPERM', 'EACCES'].includes(fh.code ?? ''), `open for write failed: ${fh.code}`);
    }
    await unmount(runner, target);
    await detachView(runner, view, device);
    assert.ok(!(await isViewOf(view, device)));
    await detachView(runner, view, device); // gone: nothing to do
    await unmount(runner, file);
    await run(['losetup', '--detach', device]);
    const left = await loopsBehind(dir.path);
    assert.ok(!left.includes(view) && !left.includes(device), 'the view and the device are gone');
  });
});

describe('staging records', () => {
  it('writes records with mode 0600 atomically and refuses a corrupt one', async () => {
    const records = new StagingRecords(join(dir.path, 'state'));
    assert.equal(await records.get('v1'), null);
    assert.deepEqual(await records.list(), []);
    const rec: StagedVolume = {
      version: 1,
      volumeId: 'v1',
      stagingPath: '/stage/v1',
      phase: 'staged',
      capability: { access: 'mount', fsType: 'ext4', mountFlags: [], mode: 'SINGLE_NODE_WRITER' },
      readOnly: false,
      info: { protocol: 'local', data: { path: '/srv/v1' } },
      device: '/dev/loop9',
      fsType: 'ext4',
      targets: {},
      updatedAt: '',
    };
    await records.put(rec);
    const file = join(records.dir, `${fileNameFor('v1')}.json`);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(records.dir)).mode & 0o777, 0o700);
    assert.equal((await records.get('v1'))?.device, '/dev/loop9');
    assert.equal((await records.list()).length, 1);
    await writeFile(file, '{"version": 1');
    await rejectsWith(records.get('v1'), ErrorCode.InvalidState, 'corrupt');
    await records.remove('v1');
    await records.remove('v1');
    assert.equal(await records.get('v1'), null);
  });
});
