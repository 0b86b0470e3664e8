// Child process: opens the state URL argv[2], takes the store's shared lock argv[3], reports,
// and hangs holding it until killed.  Usage: node hold-store-lock.js STATE_URL KEY
import { openStateStore } from '../../src/state/open.js';
import { report } from './wait-go.js';

const [url, key] = process.argv.slice(2) as [string, string];
const store = await openStateStore(url, { withLock: (_key, fn) => fn() });
if (!store.lock) throw new Error(`${store.kind} has no shared lock`);
await store.lock(key, Date.now() + 30_000);
report({ locked: true, pid: process.pid });
await new Promise(() => setInterval(() => {}, 60_000));
