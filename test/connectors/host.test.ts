import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { arch, hostname, platform } from 'node:os';
import { describe, it } from 'node:test';
import { Cairn, ErrorCode } from '../../src/index.js';
import { rejectsWith } from '../harness/assert.js';
import { run } from '../harness/exec.js';
import { tempDir } from '../harness/tmp.js';

/** Non-loopback addresses of this host as iproute2 reports them: an independent oracle. */
async function addressesFromIp(): Promise<string[]> {
  const links = JSON.parse(await run(['ip', '-json', 'addr', 'show'])) as Array<{
    flags: string[];
    addr_info: Array<{ local: string }>;
  }>;
  return links
    .filter((l) => !l.flags.includes('LOOPBACK'))
    .flatMap((l) => l.addr_info.map((a) => a.local))
    .sort();
}

describe('host connector', () => {
  it('describes this host: name, platform, OS and its non-loopback addresses', async () => {
    const dir = await tempDir();
    const cairn = await Cairn.open({ state: 'memory:', lockDir: `${dir.path}/locks` });
    try {
      const c = await cairn.hostConnector();
      assert.equal(c.host, hostname());
      assert.equal(c.platform, arch());
      assert.equal(c.osType, platform());
      assert.equal(c.multipath, false);
      assert.ok(Array.isArray(c.ips));
      for (const ip of c.ips!) assert.ok(isIP(ip), `${ip} is an address`);
      assert.deepEqual(
        [...c.ips!].sort(),
        await addressesFromIp(),
        'the addresses `ip addr` shows, loopback aside',
      );
      assert.equal((await cairn.hostConnector({ multipath: true })).multipath, true);
      assert.deepEqual(JSON.parse(JSON.stringify(c)), c, 'it is plain JSON');
    } finally {
      await cairn.close();
      await dir.cleanup();
    }
  });

  it('is accepted by a local backend, which refuses another host', async () => {
    const dir = await tempDir();
    const cairn = await Cairn.open({ state: 'memory:', lockDir: `${dir.path}/locks` });
    try {
      const backend = await cairn.addBackend('pool', { driver: 'file', path: `${dir.path}/pool` });
      const me = await cairn.hostConnector();
      backend.validateConnector(me);
      assert.throws(() => backend.validateConnector({ ...me, host: 'elsewhere' }), {
        code: ErrorCode.InvalidArgument,
      });
      assert.throws(() => backend.validateConnector({ ips: [] } as never), {
        code: ErrorCode.InvalidArgument,
      });
      const vol = await backend.createVolume({ size: '1MiB' });
      await rejectsWith(vol.connect({ ...me, host: 'elsewhere' }), ErrorCode.InvalidArgument, 'elsewhere');
      assert.deepEqual(await vol.connections(), []);
      assert.equal((await vol.refresh()).status, 'available');
    } finally {
      await cairn.close();
      await dir.cleanup();
    }
  });
});
