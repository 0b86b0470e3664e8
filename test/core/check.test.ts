import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Backend, Cairn } from '../../src/index.js';

describe('cairn.check(): the state store against the backend', () => {
  let dir: string;
  let cairn: Cairn;
  let pool: Backend;
  const path = () => join(dir, 'pool');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-check-'));
    cairn = await Cairn.open({ state: `sqlite:${join(dir, 'cairn.db')}` });
    pool = await cairn.addBackend('pool', { driver: 'file', path: path() });
  });
  after(async () => {
    await cairn.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds nothing wrong in a consistent state', async () => {
    const vol = await pool.createVolume({ size: '2MiB', name: 'fine' });
    await vol.createSnapshot({ name: 'fine-snap' });
    const [report] = await cairn.check();
    assert.deepEqual(report, {
      backend: 'pool',
      orphans: [],
      dangling: [],
      sizeMismatches: [],
      recovered: [],
      repaired: [],
    });
  });

  it('a create that finds its volume file there already refuses and leaves that file alone', async () => {
    const id = randomUUID();
    await writeFile(join(path(), `volume-${id}`), 'not ours');
    await assert.rejects(pool.createVolume({ size: '1MiB', id }), { code: 'ALREADY_EXISTS' });
    assert.ok((await readdir(path())).includes(`volume-${id}`), 'the file that was there is kept');
    await assert.rejects(cairn.volume(id), { code: 'NOT_FOUND' }, 'and no record was left');
    await unlink(join(path(), `volume-${id}`));
  });

  it('reports orphans, dangling records and size changes made behind its back, and repairs only the records', async () => {
    const lost = await pool.createVolume({ size: '1MiB', name: 'lost' });
    const grown = await pool.createVolume({ size: '1MiB', name: 'grown' });
    const orphanId = randomUUID();
    await unlink(join(path(), `volume-${lost.id}`));
    await truncate(join(path(), `volume-${grown.id}`), 3 * 1024 * 1024);
    await writeFile(join(path(), `volume-${orphanId}`), 'someone else’s data');

    const [report] = await cairn.check();
    assert.deepEqual(report?.orphans, [{ kind: 'volume', id: orphanId, size: 21 }]);
    assert.deepEqual(report?.dangling, [{ kind: 'volume', id: lost.id, name: 'lost', status: 'available' }]);
    assert.deepEqual(report?.sizeMismatches, [
      { kind: 'volume', id: grown.id, stored: 1024 * 1024, actual: 3 * 1024 * 1024 },
    ]);
    assert.equal((await lost.refresh()).status, 'available', 'a check without repair changes nothing');

    const [repaired] = await cairn.check({ repair: true });
    assert.deepEqual(repaired?.repaired, [
      { kind: 'volume', id: lost.id, action: 'marked error: missing on the backend' },
    ]);
    await lost.refresh();
    assert.equal(lost.status, 'error');
    assert.match(lost.lastError?.message ?? '', /missing on backend pool/);
    assert.ok((await readdir(path())).includes(`volume-${orphanId}`), 'an orphan is never removed');

    await lost.delete();
    const [after] = await cairn.check();
    assert.deepEqual(after?.dangling, []);
  });
});
