import { after } from 'node:test';
import { createMemoryStore } from '../../src/state/memory.js';
import type { StateStoreContext } from '../../src/state/spi.js';
import { createSqliteStore } from '../../src/state/sqlite.js';
import { runStateStoreConformance } from '../conformance/state-store.js';
import { tempDir } from '../harness/tmp.js';

// Stores opened directly (not through Cairn): migrations need only an in-process lock here.
const ctx: StateStoreContext = { withLock: (_key, fn) => fn() };
const dir = await tempDir('cairn-store-conformance-');
after(() => dir.cleanup());
let n = 0;

runStateStoreConformance('memory', async () => createMemoryStore());
runStateStoreConformance('sqlite file', () => createSqliteStore(`${dir.path}/state-${++n}.db`, ctx));
runStateStoreConformance('sqlite :memory:', () => createSqliteStore(':memory:', ctx));
