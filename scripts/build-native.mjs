#!/usr/bin/env node
// Builds the rbd fast path, native/rbd → native/rbd/build/Release/cairn_rbd.node, with node-gyp.
// Part of `npm run build` (so of `npm ci` too). Without librbd's headers (Debian: librbd-dev,
// librados-dev) it prints one line and exits 0: the rbd driver then uses the rbd CLI. When the
// addon is newer than everything it is built from, it does nothing. A failed build exits 1.
//
// binding.gyp is deliberately not at the repository root: npm would then run node-gyp itself on
// every install, and fail on machines without the headers.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native', 'rbd');
const output = join(dir, 'build', 'Release', 'cairn_rbd.node');
const stamp = join(dir, 'build', 'cairn-build.json');
const headers = ['/usr/include/rbd/librbd.h', '/usr/include/rados/librados.h'];
const shown = relative(root, output);
const started = performance.now();

const missing = headers.filter((h) => !existsSync(h));
if (missing.length > 0) {
  console.log(
    `cairn: ${missing.join(', ')} not found (apt-get install librbd-dev librados-dev): the rbd fast path is not built; the rbd driver uses the rbd CLI`,
  );
  process.exit(0);
}

/** Node's own headers, so node-gyp never tries to download them (only the npm registry is reachable). */
function nodedir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'common.gypi'))) return prefix;
  return undefined; // node-gyp's own cache, or its download where the network allows it
}

/** node-gyp: the one npm runs scripts with, a local install, or the one npm ships next to node. */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a dependency of the project: fine
  }
  const npmDir = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  candidates.push(join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c && existsSync(c));
}

/** What the addon depends on besides its sources: the Node ABI and the headers used. */
const key = JSON.stringify({
  node: process.version,
  abi: process.versions.modules,
  nodedir: nodedir() ?? null,
});

function newestInput() {
  const files = [join(dir, 'binding.gyp'), fileURLToPath(import.meta.url), ...headers];
  for (const f of readdirSync(join(dir, 'src'))) files.push(join(dir, 'src', f));
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

function upToDate() {
  if (!existsSync(output) || !existsSync(stamp)) return false;
  if (readFileSync(stamp, 'utf8') !== key) return false;
  return statSync(stamp).mtimeMs >= newestInput();
}

if (upToDate()) {
  console.log(
    `cairn: rbd fast path up to date (${shown}, checked in ${Math.round(performance.now() - started)} ms)`,
  );
  process.exit(0);
}

const gyp = nodeGyp();
if (!gyp) {
  console.error(
    'cairn: node-gyp not found (npm ships it; or npm install --no-save node-gyp): cannot build the rbd fast path',
  );
  process.exit(1);
}
const dirArgs = nodedir() ? [`--nodedir=${nodedir()}`] : [];
function run(args) {
  const r = spawnSync(process.execPath, [gyp, ...args, ...dirArgs], { cwd: dir, encoding: 'utf8' });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  // Compiler warnings are worth seeing even when the build works; node-gyp's chatter is not.
  for (const line of out.split('\n')) if (/warning:/.test(line)) console.error(line);
  if (r.status !== 0) {
    console.error(out);
    console.error(`cairn: building the rbd fast path failed (node-gyp ${args[0]})`);
    process.exit(1);
  }
}
// A new Node (or first build) starts clean; otherwise make rebuilds only what changed, and gyp
// regenerates the Makefile only when binding.gyp changed.
const makefile = join(dir, 'build', 'Makefile');
const sameKey = existsSync(stamp) && readFileSync(stamp, 'utf8') === key;
if (!sameKey || !existsSync(makefile)) {
  run(['rebuild', '--jobs=max']);
} else {
  if (statSync(makefile).mtimeMs < statSync(join(dir, 'binding.gyp')).mtimeMs) run(['configure']);
  run(['build', '--jobs=max']);
}
mkdirSync(dirname(stamp), { recursive: true });
writeFileSync(stamp, key);
console.log(
  `cairn: built the rbd fast path in ${((performance.now() - started) / 1000).toFixed(1)} s (${shown})`,
);
