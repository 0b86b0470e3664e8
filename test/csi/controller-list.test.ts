import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { createRequest, MiB, mountCap, type Plugin, rejectsCode, startPlugin } from './client.js';

const pvc = () => `pvc-${randomUUID()}`;
type Entry = {
  volume: { volume_id: string };
  status: { published_node_ids: string[]; volume_condition: unknown };
};

let p: Plugin;
before(async () => {
  p = await startPlugin();
});
after(() => p.stop());

const create = async () =>
  (await p.controller('CreateVolume', createRequest(pvc(), MiB))).volume.volume_id as string;

async function listAll(maxEntries: number, between?: (page: number) => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  let token = '';
  let page = 0;
  do {
    const res = await p.controller('ListVolumes', { max_entries: maxEntries, starting_token: token });
    assert.ok(res.entries.length <= maxEntries, `page of ${res.entries.length} entries, max ${maxEntries}`);
    seen.push(...res.entries.map((e: Entry) => e.volume.volume_id));
    token = res.next_token;
    if (token && between) await between(page++);
  } while (token);
  return seen;
}

describe('ListVolumes', () => {
  it('pages through every volume with max_entries and next_token', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push(await create());
    const all = await p.controller('ListVolumes', {});
    assert.equal(all.next_token, '');
    const everything = all.entries.map((e: Entry) => e.volume.volume_id);
    for (const id of ids) assert.ok(everything.includes(id));
    const paged = await listAll(10);
    assert.deepEqual(paged, everything);
    const first = await p.controller('ListVolumes', { max_entries: 10 });
    assert.equal(first.entries.length, 10);
    assert.notEqual(first.next_token, '');
    // An exact fit leaves no next page.
    const exact = await p.controller('ListVolumes', { max_entries: everything.length });
    assert.equal(exact.next_token, '');
  });

  it('stays stable while volumes are created and deleted: no duplicates, nothing skipped', async () => {
    const stable: string[] = [];
    const doomed: string[] = [];
    for (let i = 0; i < 25; i++) {
      stable.push(await create());
      if (i % 3 === 0) doomed.push(await create());
    }
    const created: string[] = [];
    const seen = await listAll(10, async (page) => {
      // Between pages: delete volumes on both sides of the cursor, create new ones.
      for (const id of doomed.splice(0, 3)) await p.controller('DeleteVolume', { volume_id: id });
      created.push(await create(), await create());
      if (page === 0) {
        // Concurrently with the next page too.
        const racing = Promise.all([create(), create()]);
        await Promise.all([
          racing.then((ids) => created.push(...ids)),
          p.controller('ListVolumes', { max_entries: 1 }),
        ]);
      }
    });
    assert.equal(new Set(seen).size, seen.length, 'no volume listed twice');
    for (const id of stable) assert.ok(seen.includes(id), `volume ${id} existed throughout but was skipped`);
  });

  it('reports the nodes a volume is published to and its condition', async () => {
    const id = await create();
    await p.controller('ControllerPublishVolume', {
      volume_id: id,
      node_id: hostname(),
      volume_capability: mountCap(),
    });
    const res = await p.controller('ListVolumes', {});
    const entry = res.entries.find((e: Entry) => e.volume.volume_id === id) as Entry;
    assert.deepEqual(entry.status.published_node_ids, [hostname()]);
    assert.deepEqual(entry.status.volume_condition, {
      abnormal: false,
      message: 'volume is available on its backend',
    });
  });

  it('ABORTED for a token it did not issue; INVALID_ARGUMENT for a negative max_entries', async () => {
    for (const token of ['garbage!', 'bm90LWpzb24', Buffer.from('{"t":1}').toString('base64url')])
      await rejectsCode(
        p.controller('ListVolumes', { starting_token: token }),
        status.ABORTED,
        /starting_token/,
      );
    await rejectsCode(
      p.controller('ListVolumes', { max_entries: -1 }),
      status.INVALID_ARGUMENT,
      /max_entries/,
    );
  });

  it('a token survives the deletion of the volume it points after', async () => {
    await create();
    await create();
    const all = (await p.controller('ListVolumes', {})).entries.map((e: Entry) => e.volume.volume_id);
    const [x, y] = all.slice(-2);
    const page = await p.controller('ListVolumes', { max_entries: all.length - 1 });
    assert.equal(page.entries.at(-1).volume.volume_id, x);
    await p.controller('DeleteVolume', { volume_id: x });
    const next = await p.controller('ListVolumes', { max_entries: 1, starting_token: page.next_token });
    assert.deepEqual(
      next.entries.map((e: Entry) => e.volume.volume_id),
      [y],
    );
    assert.equal(next.next_token, '');
  });
});
