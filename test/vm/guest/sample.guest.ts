// Runs INSIDE the test VM (test/vm/guest.test.ts starts it with runNodeTestsInVm): the pattern
// for node:test files that need the guest's kernel. Named *.guest.ts so that
// scripts/run-tests.mjs, which runs *.test.js, never runs it on the host.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Cairn } from '../../../src/index.js';

test('runs as root in the guest, with the storage kernel features', () => {
  assert.equal(hostname(), 'cairn-vm');
  assert.equal(process.getuid?.(), 0);
  assert.match(readFileSync('/proc/version', 'utf8'), /Debian/);
  for (const path of [
    '/dev/mapper/control',
    '/sys/kernel/config/nvmet',
    '/sys/kernel/config/target',
    '/sys/module/iscsi_tcp',
    '/sys/module/nvme_tcp',
    '/dev/nbd0',
  ])
    assert.ok(existsSync(path), `${path} is missing`);
});

test('the library attaches a volume as a loop device in the guest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-guest-'));
  const cairn = await Cairn.open({ state: 'memory:', lockDir: join(dir, 'locks') });
  try {
    const pool = await cairn.addBackend('pool', { driver: 'file', path: join(dir, 'pool') });
    const vol = await pool.createVolume({ size: '16MiB', name: 'guest' });
    const conn = await vol.attach();
    assert.match(conn.path ?? '', /^\/dev\/loop\d+$/);
    await vol.detach();
    await vol.delete();
  } finally {
    await cairn.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('fails when asked to (CAIRN_VM_SAMPLE_FAIL=1), to prove failures come back', () => {
  assert.notEqual(process.env.CAIRN_VM_SAMPLE_FAIL, '1', 'failing on request');
});
