// Child process: opens each state URL given, in turn, and reports after each which database
// client libraries (pg, mysql2) this process has loaded.  Usage: node loaded-modules.js URL...
import { createRequire } from 'node:module';
import { Cairn } from '../../src/index.js';
import { report } from './wait-go.js';

const cache = createRequire(import.meta.url).cache;
const loaded = () =>
  ['pg', 'mysql2'].filter((name) =>
    Object.keys(cache).some((path) => path.includes(`/node_modules/${name}/`)),
  );
report({ step: 'imported', loaded: loaded() });
for (const url of process.argv.slice(2)) {
  const cairn = await Cairn.open({ state: url });
  await cairn.store.getKV('k');
  await cairn.close();
  report({ step: url, loaded: loaded() });
}
