#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// Node 20's --test does not expand globs, so the files are listed here.
// Usage: node scripts/run-tests.mjs [substring-filter ...]
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...find(path));
    else if (entry.name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = find('dist/test')
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
// A test that hangs (a mount whose daemon died, a child that never exits) must fail the run,
// not stall CI: each test file gets 15 minutes (the test VM files run whole guests), and the whole run 25.
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=900000', ...files],
  {
    stdio: 'inherit',
    timeout: 25 * 60 * 1000,
    killSignal: 'SIGKILL',
  },
);
if (result.error || result.signal) {
  console.error(`test run stopped: ${result.error?.message ?? `killed by ${result.signal}`}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
