// Child process: increments the number in a file N times, each time under the lock KEY, with a
// pause between reading and writing (so an unlocked increment would be lost).
// Usage: node count.js LOCK_DIR KEY COUNTER_FILE N
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockManager } from '../../src/core/locks.js';
import { report, waitForGo } from './wait-go.js';

const [dir, key, file, n] = process.argv.slice(2) as [string, string, string, string];
const locks = new LockManager({ dir, timeoutMs: 60_000 });
report({ ready: true });
await waitForGo();
for (let i = 0; i < Number(n); i++) {
  await locks.withLocks([key], async () => {
    const value = Number(await readFile(file, 'utf8'));
    await sleep(1);
    await writeFile(file, String(value + 1));
  });
}
report({ done: true });
