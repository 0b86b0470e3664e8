// Child process: opens a Cairn context on the SQLite state file argv[2] when told "go", writes a
// key so the store is really usable, and reports.  Usage: node open-state.js STATE_FILE
import { Cairn, isCairnError } from '../../src/index.js';
import { report, waitForGo } from './wait-go.js';

const [file] = process.argv.slice(2);
report({ ready: true });
await waitForGo();
try {
  const cairn = await Cairn.open({ state: `sqlite:${file}` });
  await cairn.store.setKV(`opened-by-${process.pid}`, 'yes');
  await cairn.close();
  report({ result: 'ok' });
} catch (err) {
  report({ result: 'error', code: isCairnError(err) ? err.code : null, message: String(err) });
}
