import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { Cairn } from '../src/index.js';
import type { BenchContext, Benchmark } from './context.js';
import { run, spawnTimed } from './proc.js';
import { type CaseResult, compare, type Measurement, notRun } from './report.js';
import { now, summarize } from './stats.js';
import { loopUnavailable } from './xfs.js';

const NAME = 'attach';
const CASE = 'file driver, local loop, 64 MiB';
const SIZE = 64 * 1024 * 1024;

/** Detaches every loop device backed by `file` (`losetup -j`). */
function detachAll(file: string): void {
  const out = spawnTimed(['losetup', '--associated', file]).stdout;
  for (const line of out.split('\n')) {
    const dev = /^(\/dev\/loop\d+):/.exec(line)?.[1];
    if (dev) spawnTimed(['losetup', '--detach', dev]);
  }
}

async function runCase(ctx: BenchContext): Promise<CaseResult> {
  const why = loopUnavailable();
  if (why) return notRun(NAME, CASE, 'skipped', why);
  const dir = ctx.tempDir('attach');
  const floorFile = join(dir.path, 'floor.img');
  let volumeFile: string | undefined;
  const undo = ctx.cleanup.add('detaching the benchmark loop devices', () => {
    if (volumeFile) detachAll(volumeFile);
    detachAll(floorFile);
  });
  let cairn: Cairn | undefined;
  try {
    const pool = join(dir.path, 'pool');
    cairn = await Cairn.open({ state: `sqlite:${join(dir.path, 'cairn.db')}` });
    const backend = await cairn.addBackend('bench', { driver: 'file', path: pool });
    const vol = await backend.createVolume({ size: SIZE });
    volumeFile = join(pool, `volume-${vol.id}`);
    closeSync(openSync(floorFile, 'wx', 0o600));
    run(['truncate', '--size', String(SIZE), '--', floorFile]);

    const t = { ca: [] as number[], cd: [] as number[], fa: [] as number[], fd: [] as number[] };
    const n = ctx.quick ? 3 : 50;
    for (let k = -1; k < n; k++) {
      // k = -1 is an untimed warm-up of both.
      const a = now();
      const conn = await vol.attach();
      const b = now();
      await vol.detach();
      const c = now();
      if (!conn.path?.startsWith('/dev/loop')) throw new Error(`attach returned ${conn.path}`);
      const attached = spawnTimed(['losetup', '--find', '--show', '--', floorFile]);
      if (attached.status !== 0) throw new Error(`losetup --find --show failed: ${attached.stderr.trim()}`);
      const detached = spawnTimed(['losetup', '--detach', attached.stdout.trim()]);
      if (detached.status !== 0) throw new Error(`losetup --detach failed: ${detached.stderr.trim()}`);
      if (k < 0) continue;
      t.ca.push(b - a);
      t.cd.push(c - b);
      t.fa.push(attached.ms);
      t.fd.push(detached.ms);
    }
    await vol.delete();
    const sum = (x: number[], y: number[]) => x.map((v, i) => v + y[i]!);
    const m = (label: string, role: 'cairn' | 'floor', samples: number[]): Measurement => ({
      label,
      role,
      latency: summarize(samples),
    });
    const cycle = m('cairn attach+detach', 'cairn', sum(t.ca, t.cd));
    const att = m('cairn vol.attach()', 'cairn', t.ca);
    const det = m('cairn vol.detach()', 'cairn', t.cd);
    const fCycle = m('losetup attach+detach', 'floor', sum(t.fa, t.fd));
    const fAtt = m('losetup --find --show', 'floor', t.fa);
    const fDet = m('losetup --detach', 'floor', t.fd);
    compare(cycle, fCycle);
    compare(att, fAtt);
    compare(det, fDet);
    return {
      benchmark: NAME,
      case: CASE,
      status: 'ok',
      measurements: [cycle, att, det, fCycle, fAtt, fDet],
      notes: ['state: sqlite in a temp dir; Cairn runs losetup with --nooverlap, the floor without'],
    };
  } catch (err) {
    return notRun(NAME, CASE, 'error', (err as Error).message);
  } finally {
    await cairn?.close().catch(() => {});
    undo();
    dir.remove();
  }
}

/** vol.attach() + vol.detach() of a local loop device, against bare losetup. */
export const attach: Benchmark = {
  name: NAME,
  description:
    'attach+detach of a file-driver volume as a loop device; floor: losetup --find --show + losetup --detach',
  async run(ctx) {
    return [await runCase(ctx)];
  },
};
