import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { createServer, type Server, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRunner } from '../../src/exec/runner.js';
import { exportConfigSchema, type NbdExportConfig } from '../../src/exports/config.js';
import { createNbdExporter } from '../../src/exports/nbd.js';
import type { Exporter } from '../../src/exports/spi.js';
import { ErrorCode } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { rejectsWith } from '../harness/assert.js';
import { run } from '../harness/exec.js';
import { type TempDir, tempDir } from '../harness/tmp.js';

// The NBD exporter on this host against real qemu-nbd, checked from userspace with libnbd's
// nbdinfo and nbdcopy (no kernel NBD client here). Ports: a range of its own, off the default.
const FIRST = 41809;
const LAST = 41840;
const MiB = 1024 * 1024;
const host = { host: 'client-host' };

let dir: TempDir;
let config: NbdExportConfig;
const ctx = { backendName: 'nbd-test', runner: createRunner({ logger: silentLogger }), logger: silentLogger };
const exporters: Exporter[] = [];
const volumes: string[] = [];

async function exporter(): Promise<Exporter> {
  const e = await createNbdExporter(config, ctx);
  exporters.push(e);
  return e;
}

async function volume(size = 8 * MiB) {
  const volumeId = randomUUID();
  volumes.push(volumeId);
  const path = join(dir.path, `volume-${volumeId}`);
  await writeFile(path, '');
  await truncate(path, size);
  return { volumeId, path, size };
}

interface NbdInfo {
  'export-name': string;
  'export-size': number;
  is_read_only: boolean;
}

async function nbdinfo(port: number, name: string): Promise<NbdInfo> {
  const out = JSON.parse(await run(['nbdinfo', '--json', `nbd://127.0.0.1:${port}/${name}`])) as {
    exports: NbdInfo[];
  };
  assert.equal(out.exports.length, 1);
  return out.exports[0]!;
}

/** Live processes (not zombies: their cmdline is empty) whose command line has `arg`. */
async function processesWith(arg: string): Promise<number[]> {
  const pids: number[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const argv = (await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv.includes(arg)) pids.push(Number(p));
  }
  return pids;
}

const portOf = (info: { data: Record<string, unknown> }) => info.data.port as number;

before(async () => {
  // Fail, don't skip: the exporter cannot be proven without them (scripts/install-deps.sh).
  for (const tool of ['qemu-nbd', 'nbdinfo', 'nbdcopy'])
    await run(['sh', '-c', `command -v ${tool}`]).catch(() => {
      throw new Error(`${tool} is missing: apt-get install qemu-utils libnbd-bin`);
    });
  dir = await tempDir('cairn-nbd-export-');
  process.env.CAIRN_RUN_DIR = join(dir.path, 'run');
  config = exportConfigSchema.parse({
    protocol: 'nbd',
    address: '127.0.0.1',
    ports: [FIRST, LAST],
  }) as NbdExportConfig;
});

after(async () => {
  const e = exporters[0] ?? (await createNbdExporter(config, ctx));
  for (const v of volumes) await e.remove(v).catch(() => {});
  await dir.cleanup();
});

describe('NBD exporter (qemu-nbd)', () => {
  it('exports a file: name, size and data as nbdinfo and nbdcopy see them', async () => {
    const e = await exporter();
    const v = await volume();
    const info = await e.export(v, host, 'rw');
    assert.equal(info.protocol, 'nbd');
    assert.deepEqual(Object.keys(info.data).sort(), ['exportName', 'host', 'port', 'readOnly']);
    assert.equal(info.data.host, '127.0.0.1');
    assert.equal(info.data.exportName, v.volumeId);
    assert.equal(info.data.readOnly, false);
    assert.ok(portOf(info) >= FIRST && portOf(info) <= LAST);
    const seen = await nbdinfo(portOf(info), v.volumeId);
    assert.equal(seen['export-name'], v.volumeId);
    assert.equal(seen['export-size'], v.size);
    assert.equal(seen.is_read_only, false);

    // Write 1 MiB at 2 MiB through NBD; it lands in the file, and reads back the same.
    const pattern = randomBytes(MiB);
    const src = join(dir.path, 'pattern.bin');
    await writeFile(src, Buffer.concat([Buffer.alloc(2 * MiB), pattern, Buffer.alloc(5 * MiB)]));
    const uri = `nbd://127.0.0.1:${portOf(info)}/${v.volumeId}`;
    await run(['nbdcopy', '--flush', src, uri]);
    assert.ok((await readFile(v.path)).subarray(2 * MiB, 3 * MiB).equals(pattern), 'the file holds the data');
    const back = join(dir.path, 'back.bin');
    await run(['nbdcopy', uri, back]);
    assert.ok((await readFile(back)).subarray(2 * MiB, 3 * MiB).equals(pattern), 'NBD reads it back');

    await e.unexport(v, info, host);
    assert.deepEqual(await processesWith(`--export-name=${v.volumeId}`), [], 'no qemu-nbd left');
    await assert.rejects(nbdinfo(portOf(info), v.volumeId), 'nothing serves the export any more');
    await e.unexport(v, info, host); // idempotent
  });

  it('finds its live export again after a restart of Cairn, and serves it read-only on request', async () => {
    const v = await volume();
    const first = await (await exporter()).export(v, host, 'ro');
    assert.equal(first.data.readOnly, true);
    assert.equal((await nbdinfo(portOf(first), v.volumeId)).is_read_only, true);
    const pids = await processesWith(`--export-name=${v.volumeId}`);
    assert.equal(pids.length, 1);

    const restarted = await exporter(); // a new instance: all it has is the pid file and /proc
    assert.deepEqual(await restarted.export(v, host, 'ro'), first);
    assert.deepEqual(await processesWith(`--export-name=${v.volumeId}`), pids, 'the same qemu-nbd');
    // A read-only server cannot serve a read-write connection.
    await rejectsWith(restarted.export(v, host, 'rw'), ErrorCode.InvalidState);
    await restarted.remove(v.volumeId);
    assert.deepEqual(await processesWith(`--export-name=${v.volumeId}`), []);
    await restarted.remove(v.volumeId); // idempotent
  });

  it('takes the next port when one in the range is in use', async () => {
    const e = await exporter();
    const a = await volume();
    const infoA = await e.export(a, host, 'rw');
    // Something else (not qemu-nbd) listens on the next port of the range.
    const blocker: Server = createServer();
    const blocked = portOf(infoA) + 1;
    await new Promise<void>((res, rej) => blocker.once('error', rej).listen(blocked, '127.0.0.1', res));
    try {
      const b = await volume();
      const infoB = await e.export(b, host, 'rw');
      assert.ok(portOf(infoB) > blocked, `port ${portOf(infoB)} is after the blocked ${blocked}`);
      assert.equal((await nbdinfo(portOf(infoB), b.volumeId))['export-name'], b.volumeId);
      await e.remove(b.volumeId);
    } finally {
      blocker.close();
    }
    await e.remove(a.volumeId);
  });

  it('restarts an idle export at a new size, and refuses while a client is connected', async () => {
    const e = await exporter();
    const v = await volume(8 * MiB);
    const info = await e.export(v, host, 'rw');
    await truncate(v.path, 16 * MiB);
    await e.resize({ ...v, size: 16 * MiB });
    assert.equal((await nbdinfo(portOf(info), v.volumeId))['export-size'], 16 * MiB, 'same port, new size');

    // An open TCP connection to the server is a client, whatever it does.
    const client = new Socket();
    await new Promise<void>((res, rej) => client.once('error', rej).connect(portOf(info), '127.0.0.1', res));
    try {
      await new Promise((r) => setTimeout(r, 100));
      await truncate(v.path, 24 * MiB);
      await rejectsWith(e.resize({ ...v, size: 24 * MiB }), ErrorCode.InvalidState);
    } finally {
      client.destroy();
    }
    await e.remove(v.volumeId);
    await e.resize(v); // not exported: nothing to do
  });

  it('accepts any host, and refuses to bind to every address', async () => {
    const e = await exporter();
    e.validateConnector({ host: 'anything' });
    await rejectsWith(createNbdExporter({ ...config, address: '0.0.0.0' }, ctx), ErrorCode.InvalidArgument);
  });
});
