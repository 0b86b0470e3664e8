import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Cairn, ErrorCode, type StateStore } from '../../src/index.js';
import { createMemoryStore } from '../../src/state/memory.js';
import { rejectsWith } from '../harness/assert.js';
import { memoryDriver } from '../harness/memory-driver.js';
import { fixturePath } from '../harness/paths.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

let dir: TempDir;
before(async () => {
  dir = await tempDir('cairn-plugins-');
});
after(() => dir.cleanup());
const open = (
  state: Parameters<typeof Cairn.open>[0] extends infer O
    ? O extends { state?: infer S }
      ? S
      : never
    : never,
) => Cairn.open({ state, lockDir: `${dir.path}/locks` });

describe('third-party drivers', () => {
  it('uses a driver passed as a module object, validated by its own schema', async () => {
    const cairn = await open('memory:');
    try {
      const backend = await cairn.addBackend('mem', { driver: memoryDriver, pool: 'p1' });
      assert.equal(backend.driverName, 'test-memory');
      assert.equal(backend.capabilities.cloneSpeed, 'instant');
      const vol = await backend.createVolume({ size: 1000 });
      assert.equal(vol.size, 1024, "rounded to the driver's 512-byte alignment");
      assert.deepEqual(vol.record.driverData, { pool: 'p1', backend: 'mem' }, 'the driver made it');
      assert.equal((await backend.stats()).volumeCount, 1);
      await rejectsWith(
        cairn.addBackend('bad1', { driver: memoryDriver }),
        ErrorCode.InvalidArgument,
        'pool',
      );
      await rejectsWith(
        cairn.addBackend('bad2', { driver: memoryDriver, pool: 'p', poool: 1 }),
        ErrorCode.InvalidArgument,
        'poool',
      );
      assert.deepEqual(
        cairn.backends.map((b) => b.name),
        ['mem'],
      );
    } finally {
      await cairn.close();
    }
  });

  it('refuses a driver object that is not a driver module, and packages that are not there', async () => {
    const cairn = await open('memory:');
    try {
      await rejectsWith(
        cairn.addBackend('x', { driver: { name: 'half' } }),
        ErrorCode.InvalidArgument,
        'driver',
      );
      await rejectsWith(
        cairn.addBackend('y', { driver: '@example/cairn-driver-missing' }),
        ErrorCode.InvalidArgument,
        '@example/cairn-driver-missing',
      );
      assert.deepEqual(cairn.backends, []);
    } finally {
      await cairn.close();
    }
  });
});

describe('third-party state stores', () => {
  it('uses a store object as it is, also a class instance', async () => {
    /** A store written as a class: its methods live on the prototype. */
    class ClassStore implements StateStore {
      readonly kind = 'class';
      readonly location = 'class:test';
      private readonly inner = createMemoryStore();
      get: StateStore['get'] = (kind, id) => this.inner.get(kind, id);
      list: StateStore['list'] = (kind, filter) => this.inner.list(kind, filter);
      put<R extends Parameters<StateStore['put']>[0]>(record: R): Promise<R> {
        return this.inner.put(record);
      }
      restore(record: Parameters<StateStore['restore']>[0]) {
        return this.inner.restore(record);
      }
      remove(kind: Parameters<StateStore['remove']>[0], id: string) {
        return this.inner.remove(kind, id);
      }
      getKV(key: string) {
        return this.inner.getKV(key);
      }
      setKV(key: string, value: string) {
        return this.inner.setKV(key, value);
      }
      deleteKV(key: string) {
        return this.inner.deleteKV(key);
      }
      listKV(prefix?: string) {
        return this.inner.listKV(prefix);
      }
      close() {
        return this.inner.close();
      }
    }
    for (const store of [createMemoryStore(), new ClassStore()]) {
      const cairn = await open(store);
      const backend = await cairn.addBackend('mem', { driver: memoryDriver, pool: 'p' });
      const vol = await backend.createVolume({ size: 512 });
      assert.equal(cairn.store, store, 'the very object given');
      assert.deepEqual((await store.get('volume', vol.id))?.id, vol.id);
      await cairn.close();
    }
  });

  it('calls a { factory } with its options and a working lock', async () => {
    const seen: unknown[] = [];
    const cairn = await open({
      factory: async (options, ctx) => {
        seen.push(options, await ctx.withLock('factory-test', async () => 'locked'));
        return { ...createMemoryStore(), kind: 'custom' } satisfies StateStore;
      },
      options: { answer: 42 },
    });
    try {
      assert.deepEqual(seen, [{ answer: 42 }, 'locked']);
      assert.equal(cairn.store.kind, 'custom');
      await cairn.store.setKV('k', 'v');
      assert.equal(await cairn.store.getKV('k'), 'v');
    } finally {
      await cairn.close();
    }
  });

  it('loads a store package by { package } (a file: URL to the package entry)', async () => {
    // The fixture is loaded by a file: URL: a bare package name resolves from Cairn's own
    // location (dist/src/util), so it would have to be installed into the project's
    // node_modules, which a test must not change. loadPlugin accepts file: URLs for exactly
    // this: a local package that is not installed.
    const url = pathToFileURL(fixturePath('cairn-store-example/index.js')).href;
    const cairn = await open({ package: url, options: { label: 'from-test' } });
    try {
      const store = cairn.store as StateStore & { writes: number; lockWorks: boolean };
      assert.equal(store.kind, 'example');
      assert.equal(store.location, 'example:from-test');
      assert.equal(store.lockWorks, true);
      const backend = await cairn.addBackend('mem', { driver: memoryDriver, pool: 'p' });
      const vol = await backend.createVolume({ size: 512, name: 'in-example-store' });
      assert.ok(store.writes >= 2, 'the volume was written through the package store');
      assert.equal((await cairn.volume('in-example-store')).id, vol.id);
    } finally {
      await cairn.close();
    }
  });

  it('refuses store packages that cannot be loaded, and unknown state URLs', async () => {
    await rejectsWith(
      open({ package: 'cairn-store-not-installed' }),
      ErrorCode.InvalidArgument,
      'cairn-store-not-installed',
    );
    await rejectsWith(
      open({ package: 'not a package name!' }),
      ErrorCode.InvalidArgument,
      'not a package name!',
    );
    const noExport = pathToFileURL(fixturePath('cairn-store-example/package.json')).href;
    await rejectsWith(open({ package: noExport }), ErrorCode.InvalidArgument);
    await rejectsWith(open('redis://localhost'), ErrorCode.InvalidArgument, 'redis');
    await rejectsWith(open('postgres://u:pw@db'), ErrorCode.InvalidArgument, 'no database name', 'u:***@');
  });
});
