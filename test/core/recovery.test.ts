/**
 * Crash recovery with real crashes: the CLI is killed with SIGKILL in the middle of an
 * operation (CAIRN_FAULT names the point, see src/util/fault.ts, or a test kills it from
 * outside), then the next process that opens the backend finds what was left and repairs it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, loopDevicesUnder, Sandbox } from '../cli/harness.js';

interface VolumeJson {
  id: string;
  name: string;
  size: number;
  status: string;
  attachStatus: string;
  lastError: { operation: string; message: string } | null;
}
interface CheckJson {
  backend: string;
  orphans: unknown[];
  dangling: unknown[];
  recovered: Array<{ kind: string; id: string; found: string; outcome: string }>;
}

const MiB = 1024 * 1024;

describe('crash recovery (kill -9 mid-operation)', () => {
  let box: Sandbox;
  const pool = () => join(box.dataDir, 'volumes');
  const files = async () => (await readdir(pool())).filter((n) => !n.startsWith('.')).sort();
  const volumes = () => box.json<VolumeJson[]>(['volume', 'list']);
  const crash = async (point: string, args: string[]) => {
    const r = await box.run(args, { env: { CAIRN_FAULT: point } });
    assert.equal(r.code, null, `cairn ${args.join(' ')} should have been killed at ${point}: ${r.stderr}`);
  };
  /** `state check` opens every backend, which recovers it; returns what recovery did. */
  const recover = async () => {
    const [report] = await box.json<CheckJson[]>(['state', 'check']);
    assert.ok(report);
    assert.deepEqual(report.orphans, [], 'no orphans after recovery');
    assert.deepEqual(report.dangling, [], 'no dangling records after recovery');
    return report.recovered;
  };

  before(async () => {
    box = await Sandbox.create();
    await box.ok(['volume', 'create', '--size', '16MiB', '--name', 'base']);
  });
  after(async () => box.cleanup());

  for (const point of ['volume.create:after-record', 'volume.create:after-driver']) {
    it(`rolls back a create killed at ${point}`, async () => {
      const before = await files();
      await crash(point, ['volume', 'create', '--size', '8MiB', '--name', 'doomed']);
      assert.equal(
        (await volumes()).find((v) => v.name === 'doomed')?.status,
        'creating',
        'the crash left it creating',
      );
      const recovered = await recover();
      assert.deepEqual(
        recovered.map((a) => [a.kind, a.found, a.outcome]),
        [['volume', 'creating', 'rolled back']],
      );
      assert.equal(
        (await volumes()).find((v) => v.name === 'doomed'),
        undefined,
      );
      assert.deepEqual(await files(), before, 'the volume file is gone too');
    });
  }

  it('rolls back a clone killed after the copy', async () => {
    const before = await files();
    await crash('volume.create:after-driver', ['volume', 'clone', 'base', '--name', 'copy']);
    assert.equal((await recover()).length, 1);
    assert.deepEqual(await files(), before);
    assert.equal(
      (await volumes()).find((v) => v.name === 'base')?.status,
      'available',
      'the source is untouched',
    );
  });

  it('restores an extend killed before the backend grew, keeping the old size', async () => {
    await crash('volume.extend:after-status', ['volume', 'extend', 'base', '32MiB']);
    const recovered = await recover();
    assert.deepEqual(
      recovered.map((a) => [a.found, a.outcome]),
      [['extending', 'restored']],
    );
    const base = (await volumes()).find((v) => v.name === 'base');
    assert.equal(base?.status, 'available');
    assert.equal(base?.size, 16 * MiB);
    assert.equal(base?.lastError?.operation, 'extend');
  });

  it('restores an extend killed after the backend grew, recording the real size', async () => {
    await crash('volume.extend:after-driver', ['volume', 'extend', 'base', '48MiB']);
    await recover();
    const base = (await volumes()).find((v) => v.name === 'base');
    assert.equal(base?.status, 'available');
    assert.equal(base?.size, 48 * MiB, 'the store learns the size the backend really has');
  });

  it('rolls back a snapshot killed before its copy was recorded', async () => {
    const before = await files();
    await crash('snapshot.create:after-record', ['snapshot', 'create', 'base', '--name', 'snap']);
    assert.deepEqual(
      (await recover()).map((a) => [a.kind, a.outcome]),
      [['snapshot', 'rolled back']],
    );
    assert.deepEqual(await box.json(['snapshot', 'list']), []);
    assert.deepEqual(await files(), before);
  });

  it('rolls back a connect and an attach killed halfway, leaving no loop device', async () => {
    await crash('connection.connect:after-record', ['volume', 'attach', 'base']);
    assert.deepEqual(
      (await recover()).map((a) => [a.kind, a.found, a.outcome]),
      [['connection', 'connecting', 'rolled back']],
    );
    assert.equal((await volumes()).find((v) => v.name === 'base')?.status, 'available');

    await crash('connection.attach:after-device', ['volume', 'attach', 'base']);
    assert.equal((await loopDevicesUnder(box.dir)).length, 1, 'the crash leaked a loop device');
    assert.deepEqual(
      (await recover()).map((a) => [a.kind, a.found, a.outcome]),
      [['connection', 'attaching', 'restored']],
    );
    assert.deepEqual(await loopDevicesUnder(box.dir), [], 'recovery detached it');
    const base = (await volumes()).find((v) => v.name === 'base');
    assert.equal(base?.attachStatus, 'detached');
    assert.equal(base?.status, 'in-use', 'still connected: the export was not undone');
    await box.ok(['volume', 'disconnect', 'base']);
    assert.equal((await volumes()).find((v) => v.name === 'base')?.status, 'available');
  });

  for (const point of ['volume.delete:after-status', 'volume.delete:after-driver']) {
    it(`finishes a delete killed at ${point}`, async () => {
      await box.ok(['volume', 'create', '--size', '4MiB', '--name', 'gone']);
      const before = await files();
      await crash(point, ['volume', 'delete', 'gone']);
      assert.deepEqual(
        (await recover()).map((a) => [a.found, a.outcome]),
        [['deleting', 'resumed']],
      );
      assert.equal(
        (await volumes()).find((v) => v.name === 'gone'),
        undefined,
      );
      assert.equal((await files()).length, before.length - 1);
    });
  }

  it('leaves a live operation alone, and rolls it back once its process is killed from outside', async () => {
    // A volume with real data, so a full copy (this file system has no reflink) takes a while.
    const { id } = await box.json<VolumeJson>(['volume', 'create', '--size', '1GiB', '--name', 'big']);
    const fh = await open(join(pool(), `volume-${id}`), 'r+');
    const chunk = Buffer.alloc(4 * MiB, 0x5a);
    for (let off = 0; off < 1024 * MiB; off += chunk.length) await fh.write(chunk, 0, chunk.length, off);
    await fh.close();

    const before = await files();
    const cloner = spawn(process.execPath, [CLI, 'volume', 'clone', 'big', '--name', 'big-copy'], {
      env: { PATH: process.env.PATH, HOME: box.dir, XDG_DATA_HOME: join(box.dir, 'data') },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => cloner.on('exit', resolve));
    try {
      // Wait until the copy has started: a second volume file appears.
      for (let i = 0; i < 200 && (await files()).length === before.length; i++) await sleep(10);
      assert.equal((await files()).length, before.length + 1, 'the clone started');
      // Paused, not dead: it still holds its lock, however fast the copy would have finished.
      cloner.kill('SIGSTOP');
      const [report] = await box.json<CheckJson[]>(['state', 'check']);
      assert.deepEqual(report?.recovered, [], 'a clone in progress is not "recovered"');
      assert.equal(cloner.exitCode, null, 'the clone was still running during the check');
    } finally {
      cloner.kill('SIGKILL');
      await exited;
    }
    const recovered = await recover();
    assert.deepEqual(
      recovered.map((a) => [a.found, a.outcome]),
      [['creating', 'rolled back']],
    );
    assert.equal(
      (await volumes()).find((v) => v.name === 'big-copy'),
      undefined,
    );
    assert.deepEqual(await files(), before);
  });
});
