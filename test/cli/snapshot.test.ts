/** `cairn snapshot …` end to end: a snapshot keeps the data of its moment; restore brings it back. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from './harness.js';

interface Snap {
  id: string;
  name: string | null;
  volumeId: string;
  size: number;
  status: string;
  description: string | null;
  metadata: Record<string, string>;
}
interface Vol {
  id: string;
  name: string | null;
  size: number;
  sourceSnapshotId: string | null;
}

const MiB = 1024 * 1024;

async function writeAt(file: string, text: string, offset: number): Promise<void> {
  const fh = await open(file, 'r+');
  await fh.write(Buffer.from(text), 0, undefined, offset);
  await fh.close();
}
async function readAt(file: string, length: number, offset: number): Promise<string> {
  const fh = await open(file, 'r');
  const buf = Buffer.alloc(length);
  await fh.read(buf, 0, length, offset);
  await fh.close();
  return buf.toString();
}

describe('cairn snapshot', () => {
  let sb: Sandbox;
  let vol: Vol;
  const volumeFile = (id: string) => join(sb.dataDir, 'volumes', `volume-${id}`);
  before(async () => {
    sb = await Sandbox.create();
    vol = await sb.json<Vol>(['volume', 'create', '--size', '8MiB', '--name', 'db']);
    await writeAt(volumeFile(vol.id), 'version one', 0);
  });
  after(async () => {
    await sb?.cleanup();
  });

  it('create takes a snapshot with name, description and metadata', async () => {
    const snap = await sb.json<Snap>([
      'snapshot',
      'create',
      'db',
      '--name',
      'before',
      '--description',
      'before the upgrade',
      '--metadata',
      'reason=upgrade',
    ]);
    assert.equal(snap.volumeId, vol.id);
    assert.equal(snap.size, 8 * MiB);
    assert.equal(snap.status, 'available');
    assert.equal(snap.description, 'before the upgrade');
    assert.deepEqual(snap.metadata, { reason: 'upgrade' });
    assert.ok(existsSync(join(sb.dataDir, 'volumes', `snapshot-${snap.id}`)));
    const human = await sb.ok(['snapshot', 'show', 'before']);
    assert.match(human, /^name:\s+before$/m);
    assert.match(human, /^size:\s+8 MiB \(8388608\)$/m);
  });

  it('list shows snapshots, all or of one volume', async () => {
    await writeAt(volumeFile(vol.id), 'version two', 0);
    await sb.ok(['snapshot', 'create', vol.id, '--name', 'after']);
    const other = await sb.json<Vol>(['volume', 'create', '--size', '1MiB', '--name', 'other']);
    await sb.ok(['snapshot', 'create', 'other', '--name', 'other-snap']);

    const all = await sb.json<Snap[]>(['snapshot', 'list']);
    assert.deepEqual(
      all.map((s) => s.name),
      ['before', 'after', 'other-snap'],
    );
    const ofDb = await sb.json<Snap[]>(['snapshot', 'list', '--volume', 'db']);
    assert.deepEqual(
      ofDb.map((s) => s.name),
      ['before', 'after'],
    );
    const table = (await sb.ok(['snapshot', 'list', '--volume', other.id])).trim().split('\n');
    assert.match(table[0]!, /^ID\s+NAME\s+VOLUME\s+SIZE\s+STATUS\s+BACKEND$/);
    assert.equal(table.length, 2);
    assert.match(table[1]!, new RegExp(`other-snap\\s+${other.id}\\s+1 MiB\\s+available\\s+default$`));
    await sb.fails(['snapshot', 'list', '--volume', 'nope'], 3);
  });

  it('restore makes a new volume with the data of the snapshot, not of the volume now', async () => {
    const r = await sb.run(['--json', 'snapshot', 'restore', 'before', '--name', 'restored']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const restored = JSON.parse(r.stdout) as Vol;
    assert.equal(restored.name, 'restored');
    assert.equal(restored.size, 8 * MiB);
    assert.ok(restored.sourceSnapshotId);
    assert.equal(await readAt(volumeFile(restored.id), 11, 0), 'version one');
    assert.equal(await readAt(volumeFile(vol.id), 11, 0), 'version two');

    const bigger = await sb.json<Vol>(['snapshot', 'restore', 'after', '--size', '16MiB']);
    assert.equal(bigger.size, 16 * MiB);
    assert.equal(await readAt(volumeFile(bigger.id), 11, 0), 'version two');
    const smaller = await sb.run(['snapshot', 'restore', 'after', '--size', '1MiB']);
    assert.equal(smaller.code, 2, `never smaller than the snapshot: ${smaller.stderr}`);
    assert.match(smaller.stderr, /smaller than the snapshot/);
  });

  it('a volume with snapshots cannot be deleted until they are', async () => {
    const refused = await sb.run(['volume', 'delete', 'db']);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, /snapshot/);

    const snaps = await sb.json<Snap[]>(['snapshot', 'list', '--volume', 'db']);
    const out = await sb.ok(['snapshot', 'delete', 'before', snaps[1]!.id]);
    assert.match(out, /^deleted snapshot .* \(before\)$/m);
    assert.match(out, /^deleted snapshot .* \(after\)$/m);
    for (const s of snaps) assert.equal(existsSync(join(sb.dataDir, 'volumes', `snapshot-${s.id}`)), false);
    await sb.fails(['snapshot', 'delete', 'before'], 3); // gone
    await sb.ok(['volume', 'delete', 'db']);
    assert.equal(existsSync(volumeFile(vol.id)), false);
  });
});
