// Child process: increments the number in key COUNTER of the store at STATE_URL N times, each
// time under the store's shared lock KEY, with a pause between reading and writing (so an
// increment without the lock would be lost).  Usage: node count-store.js STATE_URL KEY N
import { setTimeout as sleep } from 'node:timers/promises';
import { openStateStore } from '../../src/state/open.js';
import { report, waitForGo } from './wait-go.js';

const [url, key, n] = process.argv.slice(2) as [string, string, string];
const store = await openStateStore(url, { withLock: (_key, fn) => fn() });
if (!store.lock) throw new Error(`${store.kind} has no shared lock`);
report({ ready: true });
await waitForGo();
for (let i = 0; i < Number(n); i++) {
  const release = await store.lock(key, Date.now() + 60_000);
  try {
    const value = Number((await store.getKV('counter')) ?? '0');
    await sleep(1);
    await store.setKV('counter', String(value + 1));
  } finally {
    await release();
  }
}
await store.close();
report({ done: true });
