import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { createRequest, MiB, type Plugin, rejectsCode, startPlugin } from './client.js';

const pvc = () => `pvc-${randomUUID()}`;
const snapName = () => `snapshot-${randomUUID()}`;

let p: Plugin;
before(async () => {
  p = await startPlugin();
});
after(() => p.stop());

const cairn = () => p.server.cairn!;
const fileOf = (id: string) => join(p.sandbox.backendDirs.pool, `volume-${id}`);

async function newVolume(size = 4 * MiB, extra: object = {}): Promise<string> {
  return (await p.controller('CreateVolume', createRequest(pvc(), size, extra))).volume.volume_id;
}

/** Writes `text` at `offset` of a volume's backing file. */
async function writeAt(id: string, offset: number, text: string): Promise<void> {
  const fh = await open(fileOf(id), 'r+');
  try {
    await fh.write(Buffer.from(text), 0, text.length, offset);
  } finally {
    await fh.close();
  }
}

async function readAt(id: string, offset: number, length: number): Promise<string> {
  return (await readFile(fileOf(id))).subarray(offset, offset + length).toString();
}

describe('CreateSnapshot', () => {
  it('cuts a ready snapshot with size, source and creation time', async () => {
    const vol = await newVolume(4 * MiB);
    const name = snapName();
    const before = Math.floor(Date.now() / 1000);
    const { snapshot } = await p.controller('CreateSnapshot', { source_volume_id: vol, name });
    assert.equal(snapshot.size_bytes, String(4 * MiB));
    assert.equal(snapshot.source_volume_id, vol);
    assert.equal(snapshot.ready_to_use, true);
    assert.equal(snapshot.group_snapshot_id, '');
    const seconds = Number(snapshot.creation_time.seconds);
    assert.ok(seconds >= before - 1 && seconds <= Date.now() / 1000 + 1, `creation_time ${seconds}`);
    const s = await cairn().snapshot(snapshot.snapshot_id);
    assert.equal(s.name, name);
    assert.equal(s.metadata['csi.cairn.io/name'], name);
  });

  it('is idempotent by name; the same name for another volume is ALREADY_EXISTS', async () => {
    const vol = await newVolume();
    const name = snapName();
    const a = await p.controller('CreateSnapshot', { source_volume_id: vol, name });
    const b = await p.controller('CreateSnapshot', { source_volume_id: vol, name });
    assert.deepEqual(b, a);
    assert.equal((await cairn().snapshots({ name })).length, 1);
    const other = await newVolume();
    await rejectsCode(
      p.controller('CreateSnapshot', { source_volume_id: other, name }),
      status.ALREADY_EXISTS,
      new RegExp(`exists for volume ${vol}`),
    );
  });

  it('INVALID_ARGUMENT for missing fields or unknown parameters; NOT_FOUND for an unknown source', async () => {
    const vol = await newVolume();
    await rejectsCode(
      p.controller('CreateSnapshot', { name: snapName() }),
      status.INVALID_ARGUMENT,
      /^source_volume_id/,
    );
    await rejectsCode(
      p.controller('CreateSnapshot', { source_volume_id: vol }),
      status.INVALID_ARGUMENT,
      /^name/,
    );
    await rejectsCode(
      p.controller('CreateSnapshot', {
        source_volume_id: vol,
        name: snapName(),
        parameters: { retain: 'yes' },
      }),
      status.INVALID_ARGUMENT,
      /parameters\.retain/,
    );
    await rejectsCode(
      p.controller('CreateSnapshot', { source_volume_id: 'nope', name: snapName() }),
      status.NOT_FOUND,
    );
    const { snapshot } = await p.controller('CreateSnapshot', {
      source_volume_id: vol,
      name: snapName(),
      parameters: { 'csi.storage.k8s.io/volumesnapshot/name': 'nightly' },
    });
    assert.equal(
      (await cairn().snapshot(snapshot.snapshot_id)).metadata['csi.storage.k8s.io/volumesnapshot/name'],
      'nightly',
    );
  });
});

describe('DeleteSnapshot and GetSnapshot', () => {
  it('deletes; an unknown id is OK; GetSnapshot then answers NOT_FOUND', async () => {
    const vol = await newVolume();
    const { snapshot } = await p.controller('CreateSnapshot', { source_volume_id: vol, name: snapName() });
    const got = await p.controller('GetSnapshot', { snapshot_id: snapshot.snapshot_id });
    assert.deepEqual(got.snapshot, snapshot);
    await p.controller('DeleteSnapshot', { snapshot_id: snapshot.snapshot_id });
    await p.controller('DeleteSnapshot', { snapshot_id: snapshot.snapshot_id });
    await p.controller('DeleteSnapshot', { snapshot_id: 'no-such-snapshot' });
    await rejectsCode(p.controller('GetSnapshot', { snapshot_id: snapshot.snapshot_id }), status.NOT_FOUND);
    await rejectsCode(p.controller('DeleteSnapshot', {}), status.INVALID_ARGUMENT, /^snapshot_id/);
    await rejectsCode(p.controller('GetSnapshot', {}), status.INVALID_ARGUMENT, /^snapshot_id/);
  });

  it('DeleteVolume of a volume with snapshots is FAILED_PRECONDITION and changes nothing', async () => {
    const vol = await newVolume();
    const { snapshot } = await p.controller('CreateSnapshot', { source_volume_id: vol, name: snapName() });
    const before = (await cairn().volume(vol)).record;
    await rejectsCode(
      p.controller('DeleteVolume', { volume_id: vol }),
      status.FAILED_PRECONDITION,
      /snapshot/,
    );
    assert.deepEqual((await cairn().volume(vol)).record, before);
    await p.controller('DeleteSnapshot', { snapshot_id: snapshot.snapshot_id });
    await p.controller('DeleteVolume', { volume_id: vol });
  });
});

describe('ListSnapshots', () => {
  it('filters by snapshot_id and source_volume_id, and pages', async () => {
    const vol = await newVolume();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push(
        (await p.controller('CreateSnapshot', { source_volume_id: vol, name: snapName() })).snapshot
          .snapshot_id,
      );
    const byVolume = await p.controller('ListSnapshots', { source_volume_id: vol });
    assert.deepEqual(
      byVolume.entries.map((e: { snapshot: { snapshot_id: string } }) => e.snapshot.snapshot_id),
      ids,
    );
    const one = await p.controller('ListSnapshots', { snapshot_id: ids[2] });
    assert.equal(one.entries.length, 1);
    assert.equal(one.entries[0].snapshot.snapshot_id, ids[2]);
    assert.equal((await p.controller('ListSnapshots', { snapshot_id: 'nope' })).entries.length, 0);
    assert.equal(
      (await p.controller('ListSnapshots', { snapshot_id: ids[0], source_volume_id: 'other' })).entries
        .length,
      0,
    );
    const seen: string[] = [];
    let token = '';
    do {
      const page = await p.controller('ListSnapshots', {
        source_volume_id: vol,
        max_entries: 2,
        starting_token: token,
      });
      assert.ok(page.entries.length <= 2);
      seen.push(...page.entries.map((e: { snapshot: { snapshot_id: string } }) => e.snapshot.snapshot_id));
      token = page.next_token;
    } while (token);
    assert.deepEqual(seen, ids);
    await rejectsCode(p.controller('ListSnapshots', { starting_token: 'garbage' }), status.ABORTED);
  });
});

describe('CreateVolume from a snapshot or a volume', () => {
  it('restores a snapshot, at its size or larger, with its data', async () => {
    const vol = await newVolume(4 * MiB);
    await writeAt(vol, MiB, 'before-the-snapshot');
    const { snapshot } = await p.controller('CreateSnapshot', { source_volume_id: vol, name: snapName() });
    await writeAt(vol, MiB, 'after--the-snapshot');
    const source = { snapshot: { snapshot_id: snapshot.snapshot_id } };
    const same = await p.controller('CreateVolume', {
      ...createRequest(pvc(), 0),
      capacity_range: null,
      volume_content_source: source,
    });
    assert.equal(same.volume.capacity_bytes, String(4 * MiB));
    assert.deepEqual(same.volume.content_source, {
      snapshot: { snapshot_id: snapshot.snapshot_id },
      type: 'snapshot',
    });
    assert.equal(await readAt(same.volume.volume_id, MiB, 19), 'before-the-snapshot');
    const name = pvc();
    const larger = await p.controller('CreateVolume', {
      ...createRequest(name, 8 * MiB),
      volume_content_source: source,
    });
    assert.equal(larger.volume.capacity_bytes, String(8 * MiB));
    assert.equal(await readAt(larger.volume.volume_id, MiB, 19), 'before-the-snapshot');
    // Idempotent with the same source; another source for the name is ALREADY_EXISTS.
    const again = await p.controller('CreateVolume', {
      ...createRequest(name, 8 * MiB),
      volume_content_source: source,
    });
    assert.equal(again.volume.volume_id, larger.volume.volume_id);
    await rejectsCode(
      p.controller('CreateVolume', createRequest(name, 8 * MiB)),
      status.ALREADY_EXISTS,
      /volume_content_source/,
    );
    // A retry after the source is gone still answers with the volume made from it.
    await p.controller('DeleteSnapshot', { snapshot_id: snapshot.snapshot_id });
    const retried = await p.controller('CreateVolume', {
      ...createRequest(name, 8 * MiB),
      volume_content_source: source,
    });
    assert.equal(retried.volume.volume_id, larger.volume.volume_id);
    await rejectsCode(
      p.controller('CreateVolume', { ...createRequest(pvc(), 8 * MiB), volume_content_source: source }),
      status.NOT_FOUND,
    );
  });

  it('OUT_OF_RANGE below the source size; NOT_FOUND for a missing source; INVALID_ARGUMENT for another backend', async () => {
    const vol = await newVolume(4 * MiB);
    const { snapshot } = await p.controller('CreateSnapshot', { source_volume_id: vol, name: snapName() });
    const source = { snapshot: { snapshot_id: snapshot.snapshot_id } };
    await rejectsCode(
      p.controller('CreateVolume', { ...createRequest(pvc(), 2 * MiB), volume_content_source: source }),
      status.OUT_OF_RANGE,
      /smaller than the source snapshot/,
    );
    await rejectsCode(
      p.controller('CreateVolume', {
        ...createRequest(pvc(), 0),
        capacity_range: { limit_bytes: String(2 * MiB) },
        volume_content_source: source,
      }),
      status.OUT_OF_RANGE,
    );
    await rejectsCode(
      p.controller('CreateVolume', {
        ...createRequest(pvc()),
        volume_content_source: { snapshot: { snapshot_id: 'nope' } },
      }),
      status.NOT_FOUND,
      /snapshot nope not found/,
    );
    await rejectsCode(
      p.controller('CreateVolume', {
        ...createRequest(pvc()),
        volume_content_source: { volume: { volume_id: 'nope' } },
      }),
      status.NOT_FOUND,
      /volume nope not found/,
    );
    await rejectsCode(
      p.controller('CreateVolume', {
        ...createRequest(pvc(), 4 * MiB),
        parameters: { backend: 'thick' },
        volume_content_source: source,
      }),
      status.INVALID_ARGUMENT,
      /backend "pool"/,
    );
  });

  it('clones a volume with its data', async () => {
    const vol = await newVolume(4 * MiB);
    await writeAt(vol, 123, 'cloned data');
    const { volume } = await p.controller('CreateVolume', {
      ...createRequest(pvc(), 6 * MiB),
      volume_content_source: { volume: { volume_id: vol } },
    });
    assert.equal(volume.capacity_bytes, String(6 * MiB));
    assert.equal(volume.content_source.volume.volume_id, vol);
    assert.equal(await readAt(volume.volume_id, 123, 11), 'cloned data');
    const rec = (await cairn().volume(volume.volume_id)).record;
    assert.equal(rec.sourceVolumeId, vol);
  });
});
