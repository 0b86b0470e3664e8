// Runs INSIDE the test VM (bench/attach-protocols.ts boots it): attach and detach latency over
// iSCSI (LIO), NVMe-oF/TCP (nvmet) and NBD (qemu-nbd), through Cairn and through the raw tools
// made the same way, on the same exported volume. Prints the CaseResult[] as one JSON line.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Backend, Cairn, type Connection } from '../../src/index.js';
import { run } from '../../test/harness/exec.js';
import { tempDir } from '../../test/harness/tmp.js';
import { type CaseResult, compare, type Measurement } from '../report.js';
import { now, summarize } from '../stats.js';

const NAME = 'attach-protocols';
const rounds = Number(process.env.CAIRN_BENCH_ROUNDS ?? '5');

/** Polls `probe` until it returns a value (the device showed up, or went), for at most 60 s. */
async function until<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(5)) {
    const v = await probe();
    if (v !== undefined) return v;
  }
  throw new Error(`${what}: timed out`);
}

const list = (dir: string) => readdir(dir).catch(() => [] as string[]);
const read = (p: string) =>
  readFile(p, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );

/** The raw tools' attach and detach of what `info` describes, as an operator would type them. */
interface RawPath {
  attach(): Promise<void>;
  detach(): Promise<void>;
}

function rawIscsi(data: Record<string, unknown>): RawPath {
  const iqn = String(data.targetIqn);
  const portal = String(data.targetPortal);
  const node = ['iscsiadm', '-m', 'node', '-T', iqn, '-p', portal];
  const disk = async () => {
    for (const s of await list('/sys/class/iscsi_session'))
      if ((await read(`/sys/class/iscsi_session/${s}/targetname`)) === iqn) {
        for (const t of await list(`/sys/class/iscsi_session/${s}/device`)) {
          if (!t.startsWith('target')) continue;
          for (const lun of await list(`/sys/class/iscsi_session/${s}/device/${t}`)) {
            const blocks = await list(`/sys/class/iscsi_session/${s}/device/${t}/${lun}/block`);
            if (blocks[0]) return blocks[0];
          }
        }
      }
    return undefined;
  };
  return {
    async attach() {
      await run([...node, '-o', 'new']);
      await run([...node, '--login']);
      await until(disk, 'iSCSI disk');
    },
    async detach() {
      await run([...node, '--logout']);
      await run([...node, '-o', 'delete']);
    },
  };
}

function rawNvme(data: Record<string, unknown>): RawPath {
  const nqn = String(data.subsystemNqn);
  const [address, port] = String((data.portals as string[])[0]).split(':') as [string, string];
  const ns = async () => {
    for (const b of await list('/sys/block'))
      if (/^nvme\d+n\d+$/.test(b) && (await read(`/sys/block/${b}/device/subsysnqn`)) === nqn) return b;
    return undefined;
  };
  return {
    async attach() {
      const args = ['nvme', 'connect', '-t', 'tcp', '-a', address, '-s', port, '-n', nqn];
      await run([...args, '--hostnqn', String(data.hostNqn)]);
      await until(ns, 'NVMe namespace');
    },
    async detach() {
      await run(['nvme', 'disconnect', '-n', nqn]);
    },
  };
}

function rawNbd(data: Record<string, unknown>): RawPath {
  const dev = '/dev/nbd15'; // Cairn takes the first free device: this one stays apart
  return {
    async attach() {
      const argv = ['nbd-client', String(data.host), String(data.port), dev, '-N', String(data.exportName)];
      await run([...argv, '-nonetlink']);
    },
    async detach() {
      await run(['nbd-client', '-d', dev]);
    },
  };
}

async function measure(
  label: string,
  backend: Backend,
  raw: (data: Record<string, unknown>) => RawPath,
  cairn: Cairn,
): Promise<CaseResult> {
  const vol = await backend.createVolume({ size: '64MiB' });
  const t = {
    full: [] as number[],
    ca: [] as number[],
    cd: [] as number[],
    ra: [] as number[],
    rd: [] as number[],
  };
  let conn: Connection | undefined;
  try {
    for (let k = -1; k < rounds; k++) {
      // The whole path a user takes: export + attach, detach + unexport.
      const a = now();
      await vol.attach();
      await vol.detach();
      const b = now();
      // Attach and detach alone, on an export that stays, against the raw tools on the same export.
      conn = await vol.connect(await cairn.hostConnector());
      const c = now();
      await conn.attach();
      const d = now();
      await conn.detach();
      const e = now();
      const path = raw(conn.info.data);
      const f = now();
      await path.attach();
      const g = now();
      await path.detach();
      const h = now();
      await conn.disconnect();
      conn = undefined;
      if (k < 0) continue; // an untimed warm-up
      t.full.push(b - a);
      t.ca.push(d - c);
      t.cd.push(e - d);
      t.ra.push(g - f);
      t.rd.push(h - g);
    }
  } finally {
    await conn?.disconnect({ force: true }).catch(() => {});
    await vol.delete().catch(() => {});
  }
  const m = (l: string, role: 'cairn' | 'floor', s: number[]): Measurement => ({
    label: l,
    role,
    latency: summarize(s),
  });
  const ca = m('cairn connection.attach()', 'cairn', t.ca);
  const cd = m('cairn connection.detach()', 'cairn', t.cd);
  const ra = m('raw attach', 'floor', t.ra);
  const rd = m('raw detach', 'floor', t.rd);
  compare(ca, ra);
  compare(cd, rd);
  return {
    benchmark: NAME,
    case: label,
    status: 'ok',
    measurements: [m('cairn vol.attach()+detach() with export', 'cairn', t.full), ca, cd, ra, rd],
    notes: [
      `${rounds} rounds in a QEMU TCG guest (software emulation: absolute times are slow, ratios hold)`,
    ],
  };
}

const dir = await tempDir('cairn-bench-protocols-');
const cairn = await Cairn.open({ state: 'memory:' });
const results: CaseResult[] = [];
try {
  const pool = (name: string) => join(dir.path, name);
  const cases: Array<[string, Record<string, unknown>, (d: Record<string, unknown>) => RawPath, string]> = [
    [
      'iSCSI (LIO, one portal, no CHAP)',
      { protocol: 'iscsi', helper: 'lio', portals: ['127.0.0.1:3260'], chap: false },
      rawIscsi,
      'iscsiadm -m node -o new + --login + wait for sdX / --logout + -o delete',
    ],
    [
      'NVMe-oF/TCP (nvmet)',
      { protocol: 'nvmeof', portals: ['127.0.0.1:4420'] },
      rawNvme,
      'nvme connect + wait for nvmeXnY / nvme disconnect',
    ],
    [
      'NBD (qemu-nbd)',
      { protocol: 'nbd', address: '127.0.0.1', ports: [10950, 10999] },
      rawNbd,
      'nbd-client -nonetlink / nbd-client -d',
    ],
  ];
  for (const [label, exportConfig, raw, floor] of cases) {
    try {
      const b = await cairn.addBackend(`b${results.length}`, {
        driver: 'file',
        path: pool(`p${results.length}`),
        export: exportConfig,
      });
      const r = await measure(label, b, raw, cairn);
      r.notes.push(`raw: ${floor}`);
      results.push(r);
    } catch (err) {
      results.push({
        benchmark: NAME,
        case: label,
        status: 'error',
        reason: (err as Error).message,
        measurements: [],
        notes: [],
      });
    }
  }
} finally {
  await cairn.close();
  await dir.cleanup();
}
console.log(`CAIRN-BENCH-RESULTS ${JSON.stringify(results)}`);
