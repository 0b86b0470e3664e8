// Child process: opens a Cairn context on the state URL argv[2] when told "go", writes a key so
// the store is really usable, and reports.  Usage: node open-store.js STATE_URL
import { Cairn, isCairnError } from '../../src/index.js';
import { report, waitForGo } from './wait-go.js';

const [url] = process.argv.slice(2) as [string];
report({ ready: true });
await waitForGo();
try {
  const cairn = await Cairn.open({ state: url });
  await cairn.store.setKV(`opened-by-${process.pid}`, 'yes');
  await cairn.close();
  report({ result: 'ok' });
} catch (err) {
  report({ result: 'error', code: isCairnError(err) ? err.code : null, message: String(err) });
}
