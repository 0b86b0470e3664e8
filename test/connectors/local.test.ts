import assert from 'node:assert/strict';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Cairn, ErrorCode, type Volume } from '../../src/index.js';
import { rejectsWith } from '../harness/assert.js';
import { loopBackingFile } from '../harness/blockdev.js';
import { run } from '../harness/exec.js';
import { detachLoopsUnder, loopsUnder } from '../harness/loops.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

let dir: TempDir;
let cairn: Cairn;
before(async () => {
  dir = await tempDir('cairn-local-');
  cairn = await Cairn.open({ state: `sqlite:${dir.path}/state.db` });
  await cairn.addBackend('pool', { driver: 'file', path: join(dir.path, 'pool') });
});
after(async () => {
  await cairn.close();
  await run(['umount', join(dir.path, 'mnt')]).catch(() => {}); // in case a case failed mid-way
  await detachLoopsUnder(dir.path);
  await dir.cleanup();
});

/** Rewrites the volume's only connection record, as a crashed or confused process could leave it. */
async function tamper(vol: Volume, changes: Record<string, unknown>): Promise<void> {
  const [conn] = await vol.connections();
  await cairn.store.put({ ...conn!.record, ...changes });
}

describe('local connector (loop devices)', () => {
  it('detaches a device an interrupted attach left without recording it', async () => {
    const vol = await cairn.backend('pool').createVolume({ size: '8MiB' });
    await vol.attach();
    // As if the process died after losetup but before saving the device path.
    await tamper(vol, { status: 'attaching', path: null });
    assert.equal((await loopsUnder(dir.path)).length, 1);
    await rejectsWith(vol.detach(), ErrorCode.InvalidState);
    await vol.detach({ force: true });
    assert.deepEqual(await loopsUnder(dir.path), [], 'the unrecorded device was found and detached');
    assert.deepEqual(await vol.connections(), []);
    await vol.delete();
  });

  it('never detaches a device that now backs another file', async () => {
    const vol = await cairn.backend('pool').createVolume({ size: '8MiB' });
    const conn = await vol.attach();
    const foreignFile = join(dir.path, 'foreign.img');
    await writeFile(foreignFile, '');
    await truncate(foreignFile, 8 * 1024 * 1024);
    const foreign = (await run(['losetup', '--find', '--show', foreignFile])).trim();
    try {
      // Our device was detached behind Cairn's back and its number reused by someone else.
      await run(['losetup', '--detach', conn.path!]);
      await tamper(vol, { path: foreign });
      await vol.detach();
      assert.equal(await loopBackingFile(foreign), foreignFile, "someone else's device is left alone");
      assert.deepEqual(await vol.connections(), []);
    } finally {
      await run(['losetup', '--detach', foreign]);
    }
    await vol.delete();
  });

  it('refuses to detach a mounted device and says where it is mounted', async () => {
    const vol = await cairn.backend('pool').createVolume({ size: '32MiB' });
    const conn = await vol.attach();
    const mnt = join(dir.path, 'mnt');
    await mkdir(mnt, { recursive: true });
    await run(['mkfs.ext4', '-q', conn.path!]);
    await run(['mount', conn.path!, mnt]);
    try {
      await rejectsWith(vol.detach(), ErrorCode.InvalidState, mnt);
      assert.equal((await conn.refresh()).status, 'attached', 'the attachment is as it was');
      assert.ok(await loopBackingFile(conn.path!));
    } finally {
      await run(['umount', mnt]);
    }
    await vol.detach();
    assert.deepEqual(await loopsUnder(dir.path), []);
    await vol.delete();
  });
});
