/** `cairn volume …` end to end, with real files and real loop devices. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { blockDeviceSize, loopBackingFile, loopDevicesUnder, Sandbox } from './harness.js';

interface Vol {
  id: string;
  name: string | null;
  size: number;
  status: string;
  attachStatus: string;
  sourceVolumeId: string | null;
  description: string | null;
  metadata: Record<string, string>;
  extraSpecs: Record<string, string>;
}

const MiB = 1024 * 1024;
const run = promisify(execFile);

describe('cairn volume', () => {
  let sb: Sandbox;
  const fileOf = (id: string) => join(sb.dataDir, 'volumes', `volume-${id}`);
  before(async () => {
    sb = await Sandbox.create();
  });
  after(async () => {
    await sb?.cleanup();
  });

  it('create takes every option; show and list find the volume by name and id', async () => {
    const vol = await sb.json<Vol>([
      'volume',
      'create',
      '--size',
      '10MiB',
      '--name',
      'data',
      '--description',
      'the data',
      '--metadata',
      'app=pg',
      '--metadata',
      'url=a=b',
      '--extra-spec',
      'tier=gold',
      '--id',
      'vol-0001',
    ]);
    assert.equal(vol.id, 'vol-0001');
    assert.equal(vol.size, 10 * MiB);
    assert.equal(vol.description, 'the data');
    assert.deepEqual(vol.metadata, { app: 'pg', url: 'a=b' });
    assert.deepEqual(vol.extraSpecs, { tier: 'gold' });
    assert.deepEqual(await sb.json(['volume', 'show', 'vol-0001']), vol);
    const shown = await sb.ok(['volume', 'show', 'data']);
    assert.match(shown, /^id:\s+vol-0001$/m);
    assert.match(shown, /^metadata:\s+app=pg, url=a=b$/m);
    assert.match(shown, /^description:\s+the data$/m);
    assert.deepEqual(
      (await sb.json<Vol[]>(['volume', 'list', '--backend', 'default'])).map((v) => v.id),
      ['vol-0001'],
    );
    assert.deepEqual(await sb.json(['volume', 'list', '--backend', 'elsewhere']), []);
    assert.deepEqual(await sb.json(['volume', 'list', '--name', 'other']), []);
  });

  it('sizes are accepted as the library accepts them', async () => {
    for (const [size, bytes] of [
      ['2097152', 2 * MiB],
      ['3M', 3 * MiB],
      ['1.5MiB', 2 * MiB], // rounded up to the backend's 1 MiB alignment
      ['1GB', 954 * MiB], // 10^9 bytes, rounded up to whole MiB
    ] as const) {
      const vol = await sb.json<Vol>(['volume', 'create', '--size', size]);
      assert.equal(vol.size, bytes, size);
      await sb.ok(['volume', 'delete', vol.id]);
    }
  });

  it('clone copies the data into a new volume, at the same or a larger size', async () => {
    const src = await sb.json<Vol>(['volume', 'show', 'data']);
    const fh = await open(fileOf(src.id), 'r+');
    await fh.write(Buffer.from('hello from the source'), 0, undefined, 4096);
    await fh.close();
    const r = await sb.run(['--json', 'volume', 'clone', 'data', '--name', 'copy', '--size', '20MiB']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
    const copy = JSON.parse(r.stdout) as Vol;
    assert.equal(copy.name, 'copy');
    assert.equal(copy.size, 20 * MiB);
    assert.equal(copy.sourceVolumeId, src.id);
    const buf = Buffer.alloc(21);
    const cf = await open(fileOf(copy.id), 'r');
    await cf.read(buf, 0, 21, 4096);
    await cf.close();
    assert.equal(buf.toString(), 'hello from the source');
    assert.equal((await stat(fileOf(copy.id))).size, 20 * MiB);
    const human = await sb.ok(['volume', 'clone', 'copy', '--name', 'copy2']);
    assert.match(human, /^source volume:\s+/m);
  });

  it('extend grows the volume and its file', async () => {
    const vol = await sb.json<Vol>(['volume', 'extend', 'copy2', '32MiB']);
    assert.equal(vol.size, 32 * MiB);
    assert.equal((await stat(fileOf(vol.id))).size, 32 * MiB);
    assert.match(await sb.ok(['volume', 'show', 'copy2']), /^size:\s+32 MiB \(33554432\)$/m);
  });

  it('attach prints a real loop device of the right size; extend grows it; detach removes it', async () => {
    const vol = await sb.json<Vol>(['volume', 'show', 'copy2']);
    const device = (await sb.ok(['volume', 'attach', 'copy2'])).trim();
    assert.match(device, /^\/dev\/loop\d+$/);
    assert.ok(existsSync(device), `${device} exists`);
    assert.equal(await loopBackingFile(device), fileOf(vol.id));
    assert.equal(await blockDeviceSize(device), 32 * MiB);

    const attached = await sb.json<Vol>(['volume', 'show', 'copy2']);
    assert.equal(attached.status, 'in-use');
    assert.equal(attached.attachStatus, 'attached');
    assert.match(await sb.ok(['volume', 'show', 'copy2']), new RegExp(`\\battached\\s+${device}$`, 'm'));

    // Growing an attached volume rescans its device.
    await sb.ok(['volume', 'extend', 'copy2', '40MiB']);
    assert.equal(await blockDeviceSize(device), 40 * MiB);

    const again = await sb.run(['volume', 'attach', 'copy2']);
    assert.equal(again.code, 5, `attaching twice is an invalid state: ${again.stderr}`);
    assert.match(again.stderr, /already attached/);

    assert.match(await sb.ok(['volume', 'detach', 'copy2']), /detached volume copy2/);
    // Another test may have taken the freed loop number already: what matters is that it no
    // longer holds this volume.
    assert.notEqual(await loopBackingFile(device), fileOf(vol.id), 'the loop device is gone');
    const detached = await sb.json<Vol>(['volume', 'show', 'copy2']);
    assert.equal(detached.status, 'available');
    assert.equal(detached.attachStatus, 'detached');
    await sb.fails(['volume', 'detach', 'copy2'], 5); // not attached any more
  });

  it('detach refuses while the device is mounted (exit 5), and works once unmounted', async () => {
    const device = (await sb.ok(['volume', 'attach', 'copy2'])).trim();
    const mnt = join(sb.dir, 'mnt');
    await mkdir(mnt);
    await run('mkfs.ext4', ['-q', '-F', device]);
    await run('mount', [device, mnt]);
    try {
      const refused = await sb.run(['volume', 'detach', 'copy2']);
      assert.equal(refused.code, 5, refused.stderr);
      assert.match(refused.stderr, new RegExp(`${device} is in use \\(mounted at ${mnt}\\)`));
      assert.equal(
        await loopBackingFile(device),
        fileOf((await sb.json<Vol>(['volume', 'show', 'copy2'])).id),
      );
    } finally {
      await run('umount', [mnt]);
    }
    await sb.ok(['volume', 'detach', 'copy2']);
    assert.deepEqual(await loopDevicesUnder(sb.dir), [], 'no loop device holds a file of this test');
  });

  it('attach --ro makes a read-only device; --json gives the connection', async () => {
    const conn = await sb.json<{ path: string; mode: string; status: string; id: string }>([
      'volume',
      'attach',
      'copy',
      '--ro',
    ]);
    assert.equal(conn.mode, 'ro');
    assert.equal(conn.status, 'attached');
    const name = conn.path.replace('/dev/', '');
    assert.equal((await readFile(`/sys/class/block/${name}/ro`, 'utf8')).trim(), '1');
    await sb.ok(['volume', 'detach', 'copy']);
    assert.deepEqual(await loopDevicesUnder(sb.dir), []);
  });

  it('connect prints the connection (id and info), disconnect removes it', async () => {
    const conn = await sb.json<{
      id: string;
      host: string;
      status: string;
      info: { protocol: string; data: { path: string } };
    }>(['volume', 'connect', 'copy']);
    assert.equal(conn.status, 'connected');
    assert.equal(conn.info.protocol, 'local');
    assert.equal(conn.info.data.path, fileOf((await sb.json<Vol>(['volume', 'show', 'copy'])).id));
    assert.equal((await sb.json<Vol>(['volume', 'show', 'copy'])).status, 'in-use');

    const wrongId = await sb.run(['volume', 'disconnect', 'copy', '--connection', 'nope']);
    assert.equal(wrongId.code, 3, wrongId.stderr);
    assert.match(
      await sb.ok(['volume', 'disconnect', 'copy', '--connection', conn.id]),
      new RegExp(`disconnected volume copy from ${conn.host} \\(connection ${conn.id}\\)`),
    );
    assert.equal((await sb.json<Vol>(['volume', 'show', 'copy'])).status, 'available');
    await sb.fails(['volume', 'disconnect', 'copy'], 5); // nothing to disconnect
  });

  it('connect takes a connector as inline JSON, a file or stdin, and checks it', async () => {
    const { host } = await sb.json<{ host: string }>(['host', 'connector']);
    const human = await sb.ok(['volume', 'connect', 'copy', '--connector', JSON.stringify({ host })]);
    assert.match(human, /^protocol:\s+local$/m);
    assert.match(human, /^ {2}path:\s+\//m);
    await sb.ok(['volume', 'disconnect', 'copy']);

    const file = await sb.file('connector.json', JSON.stringify({ host, multipath: false }));
    await sb.ok(['volume', 'connect', 'copy', '--connector', file, '--ro']);
    await sb.ok(['volume', 'disconnect', 'copy']);
    await sb.ok(['volume', 'connect', 'copy', '--connector', '-'], { input: JSON.stringify({ host }) });
    await sb.ok(['volume', 'disconnect', 'copy']);

    const other = await sb.run(['volume', 'connect', 'copy', '--connector', '{"host":"elsewhere"}']);
    assert.equal(other.code, 2, `the file backend exports only to its own host: ${other.stderr}`);
    assert.match(other.stderr, /elsewhere/);
    await sb.fails(['volume', 'connect', 'copy', '--connector', '{nope'], 2);
    assert.equal(
      (await sb.run(['volume', 'connect', 'copy', '--connector', join(sb.dir, 'none.json')])).code,
      2,
    );
    assert.equal((await sb.json<Vol>(['volume', 'show', 'copy'])).status, 'available');
  });

  it('a volume a crash left "creating" is rolled back when its backend is next opened', async () => {
    // As a crash during a create would leave it: a record in "creating", and nobody holding its lock.
    const dump = JSON.parse(await sb.ok(['state', 'dump'])) as { volumes: Array<Record<string, unknown>> };
    const stuck = { ...dump.volumes[0]!, id: 'stuck-1', name: 'stuck', status: 'creating' };
    await sb.ok(['state', 'load', '-'], {
      input: JSON.stringify({ ...dump, volumes: [stuck], snapshots: [], connections: [] }),
    });
    assert.equal(
      (await sb.json<Vol>(['volume', 'show', 'stuck'])).status,
      'creating',
      'listing does not open the backend',
    );
    const check = await sb.run(['state', 'check']);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stderr, /recovered an interrupted operation/);
    assert.match(check.stdout, /recovered volume stuck-1 \(creating\): rolled back/);
    await sb.fails(['volume', 'show', 'stuck'], 3);
  });

  it('delete removes volumes and their files; several at once, reporting each failure', async () => {
    const ids = (await sb.json<Vol[]>(['volume', 'list'])).map((v) => v.id);
    assert.equal(ids.length, 3);
    const partial = await sb.run(['--json', 'volume', 'delete', 'copy', 'missing', 'copy2']);
    assert.equal(partial.code, 3, `exits with the failure: ${partial.stderr}`);
    assert.equal((JSON.parse(partial.stdout) as { deleted: string[] }).deleted.length, 2);
    assert.match(partial.stderr, /missing/);
    const out = await sb.ok(['volume', 'delete', 'data']);
    assert.match(out, /^deleted volume vol-0001 \(data\)$/m);
    assert.deepEqual(await sb.json(['volume', 'list']), []);
    for (const id of ids) assert.equal(existsSync(fileOf(id)), false);
    const empty = await sb.run(['volume', 'list']);
    assert.equal(empty.stdout, '');
    assert.equal(empty.stderr, 'no volumes\n');
  });

  it('revert rolls a volume back to its snapshot; manage and unmanage adopt and release files', async () => {
    const vol = await sb.json<Vol>(['volume', 'create', '--size', '4MiB', '--name', 'rev']);
    const write = async (byte: number) => {
      const fh = await open(fileOf(vol.id), 'r+');
      await fh.write(Buffer.alloc(4096, byte), 0, 4096, 0);
      await fh.close();
    };
    const first = async () => (await readFile(fileOf(vol.id)))[0];
    await write(0xaa);
    await sb.ok(['snapshot', 'create', 'rev', '--name', 'rev-snap']);
    await write(0xbb);
    assert.equal((await sb.json<Vol>(['volume', 'revert', 'rev', 'rev-snap'])).status, 'available');
    assert.equal(await first(), 0xaa);
    await sb.fails(['volume', 'revert', 'rev', 'no-such-snapshot'], 3);
    await sb.ok(['snapshot', 'delete', 'rev-snap']);

    const kept = await sb.json<{ unmanaged: string; reference: string }>(['volume', 'unmanage', 'rev']);
    assert.deepEqual(kept, { unmanaged: vol.id, reference: `volume-${vol.id}` });
    assert.deepEqual(await sb.json(['volume', 'list', '--name', 'rev']), []);
    assert.ok(existsSync(fileOf(vol.id)), 'unmanage keeps the file');
    const back = await sb.json<Vol>(['volume', 'manage', `volume-${vol.id}`, '--name', 'back']);
    assert.equal(back.size, 4 * MiB);
    assert.equal((await readFile(fileOf(back.id)))[0], 0xaa);
    assert.ok(!existsSync(fileOf(vol.id)), 'the file is renamed to the new volume');
    await sb.fails(['volume', 'manage', '../escape'], 2);
    await sb.ok(['volume', 'delete', 'back']);
  });
});
