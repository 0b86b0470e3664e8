// Child process: opens a Cairn context on the state URL argv[2], uses it, takes and releases a
// lock, and ends without closing it: the process must still exit.  Usage: node forget-close.js URL
import { Cairn } from '../../src/index.js';
import { report } from './wait-go.js';

const [url] = process.argv.slice(2) as [string];
const cairn = await Cairn.open({ state: url });
await cairn.store.setKV('forgotten', 'yes');
await (await cairn.store.lock!('forgotten', Date.now() + 5_000))();
report({ used: true });
