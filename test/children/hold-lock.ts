// Child process: takes the lock argv[3] in the lock directory argv[2], reports, and hangs
// holding it until killed.  Usage: node hold-lock.js LOCK_DIR KEY
import { LockManager } from '../../src/core/locks.js';
import { report } from './wait-go.js';

const [dir, key] = process.argv.slice(2) as [string, string];
const locks = new LockManager({ dir });
await locks.withLocks([key], async () => {
  report({ locked: true, pid: process.pid });
  await new Promise(() => setInterval(() => {}, 60_000));
});
