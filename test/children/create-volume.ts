// Child process: its own Cairn context on the SQLite state STATE_FILE, with a file backend on
// POOL_DIR; creates a 16 MiB volume named NAME when told "go" and reports how that went.
// Usage: node create-volume.js STATE_FILE POOL_DIR NAME
import { Cairn, isCairnError } from '../../src/index.js';
import { report, waitForGo } from './wait-go.js';

const [state, pool, name] = process.argv.slice(2) as [string, string, string];
const cairn = await Cairn.open({ state: `sqlite:${state}` });
const backend = await cairn.addBackend('pool', { driver: 'file', path: pool });
report({ ready: true });
await waitForGo();
try {
  const vol = await backend.createVolume({ size: '16MiB', name });
  report({ result: 'ok', id: vol.id });
} catch (err) {
  report({ result: 'error', code: isCairnError(err) ? err.code : null, message: String(err) });
} finally {
  await cairn.close();
}
