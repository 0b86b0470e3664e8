import { randomFillSync } from 'node:crypto';
import { constants, mkdirSync, unlinkSync } from 'node:fs';
import { copyFile, open, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cairn, type Volume } from '../src/index.js';
import type { BenchContext, Benchmark } from './context.js';
import { run, spawnTimed } from './proc.js';
import { type CaseResult, compare, type Measurement, notRun } from './report.js';
import { summarize, timed } from './stats.js';
import { fsTypeOf, loopUnavailable, makeXfs, XFS_COMMANDS } from './xfs.js';

const NAME = 'clone';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const VOLUME_SIZE = 10 * GiB;

interface Layout {
  chunks: number;
  /** Distance between the starts of two chunks: the data is spread over the whole volume. */
  stride: number;
}

function layout(quick: boolean): Layout {
  const chunks = quick ? 32 : 256;
  return { chunks, stride: Math.floor(VOLUME_SIZE / chunks / MiB) * MiB };
}

/** Writes `chunks` MiB of random data, one MiB every `stride` bytes, into a volume file. */
async function writeData(file: string, { chunks, stride }: Layout): Promise<void> {
  const buf = Buffer.alloc(MiB);
  const fh = await open(file, 'r+');
  try {
    for (let i = 0; i < chunks; i++) {
      randomFillSync(buf);
      await fh.write(buf, 0, MiB, i * stride);
    }
  } finally {
    await fh.close();
  }
}

async function readChunk(file: string, offset: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(MiB);
    await fh.read(buf, 0, MiB, offset);
    return buf;
  } finally {
    await fh.close();
  }
}

/** Throws unless `copy` has the size of `source` and the same data in two sampled chunks. */
async function verifyCopy(source: string, copy: string, { chunks, stride }: Layout): Promise<void> {
  const [a, b] = await Promise.all([stat(source), stat(copy)]);
  if (a.size !== b.size) throw new Error(`${copy} is ${b.size} bytes, the source ${a.size}`);
  for (const i of [0, chunks - 1]) {
    const [x, y] = await Promise.all([readChunk(source, i * stride), readChunk(copy, i * stride)]);
    if (!x.equals(y)) throw new Error(`${copy} differs from its source in chunk ${i}`);
  }
}

interface CloneCase {
  name: string;
  /** Directory on the file system under test. */
  base: string;
  reflink: 'always' | 'never';
}

async function runCase(ctx: BenchContext, c: CloneCase): Promise<CaseResult> {
  const state = ctx.tempDir('clone-state');
  const pool = join(c.base, 'pool');
  let cairn: Cairn | undefined;
  try {
    const data = layout(ctx.quick);
    cairn = await Cairn.open({ state: `sqlite:${join(state.path, 'cairn.db')}` });
    const backend = await cairn.addBackend('bench', { driver: 'file', path: pool, reflink: c.reflink });
    const expected = c.reflink === 'always' ? 'instant' : 'copy';
    if (backend.capabilities.cloneSpeed !== expected)
      throw new Error(`backend clone speed is ${backend.capabilities.cloneSpeed}, expected ${expected}`);
    const source = await backend.createVolume({ size: VOLUME_SIZE });
    const sourceFile = join(pool, `volume-${source.id}`);
    ctx.log(`${NAME}: ${c.name}: writing ${data.chunks} MiB of random data`);
    await writeData(sourceFile, data);
    // Flush the file system under test and the one holding its image (and the state): the
    // writeback of one rep must not run during the next.
    const sync = () => {
      run(['sync', '--file-system', '--', pool]);
      run(['sync', '--file-system', '--', tmpdir()]);
    };
    sync();

    const floorFile = join(pool, 'floor-copy');
    const cpFloor = (argv: string[]) => async () => {
      const res = spawnTimed([...argv, '--', sourceFile, floorFile]);
      if (res.status !== 0) throw new Error(`${argv.join(' ')} failed: ${res.stderr.trim()}`);
    };
    const floors: Array<{ label: string; fn: () => Promise<unknown> }> =
      c.reflink === 'always'
        ? [
            { label: 'cp --reflink=always', fn: cpFloor(['cp', '--reflink=always']) },
            {
              label: 'copyFile(FICLONE_FORCE) in-process',
              fn: () => copyFile(sourceFile, floorFile, constants.COPYFILE_FICLONE_FORCE),
            },
          ]
        : [
            {
              label: 'cp --sparse=always --reflink=never',
              fn: cpFloor(['cp', '--sparse=always', '--reflink=never']),
            },
          ];

    const reps = c.reflink === 'always' ? (ctx.quick ? 2 : 20) : ctx.quick ? 1 : 5;
    const cairnMs: number[] = [];
    const floorMs = floors.map(() => [] as number[]);
    // Rep -1 is an untimed warm-up that also checks the copies hold the data.
    for (let k = -1; k < reps; k++) {
      ctx.log(`${NAME}: ${c.name}: ${k < 0 ? 'warm-up' : `rep ${k + 1}/${reps}`}`);
      let copy: Volume | undefined;
      const ms = await timed(async () => {
        copy = await source.clone();
      });
      if (k < 0) await verifyCopy(sourceFile, join(pool, `volume-${copy!.id}`), data);
      else cairnMs.push(ms);
      await copy!.delete();
      sync();
      for (const [i, f] of floors.entries()) {
        const ms = await timed(f.fn);
        if (k < 0) await verifyCopy(sourceFile, floorFile, data);
        else floorMs[i]!.push(ms);
        unlinkSync(floorFile);
        sync();
      }
    }
    await source.delete();

    const cairnM: Measurement = { label: 'cairn vol.clone()', role: 'cairn', latency: summarize(cairnMs) };
    const floorM = floors.map(
      (f, i): Measurement => ({ label: f.label, role: 'floor', latency: summarize(floorMs[i]!) }),
    );
    for (const f of floorM) compare(cairnM, f);
    return {
      benchmark: NAME,
      case: c.name,
      status: 'ok',
      measurements: [cairnM, ...floorM],
      notes: [],
    };
  } catch (err) {
    return notRun(NAME, c.name, 'error', (err as Error).message);
  } finally {
    await cairn?.close().catch(() => {});
    state.remove();
  }
}

/** Clone of a 10 GiB volume holding scattered data, with and without reflink, against cp. */
export const clone: Benchmark = {
  name: NAME,
  description:
    'clone of a 10 GiB volume with 256 MiB of scattered data: xfs reflink, xfs and host fs without; floors: cp',
  async run(ctx) {
    const data = layout(ctx.quick);
    const results: CaseResult[] = [];
    const host = ctx.tempDir('clone-host');
    try {
      const name = `host ${fsTypeOf(tmpdir())} (${tmpdir()}), reflink never`;
      results.push(await runCase(ctx, { name, base: host.path, reflink: 'never' }));
    } finally {
      host.remove();
    }
    const xfsCases = ['xfs -m reflink=1, reflink always', 'xfs -m reflink=1, reflink never'];
    let xfs: ReturnType<typeof makeXfs> | undefined;
    const why = loopUnavailable(XFS_COMMANDS);
    if (why) {
      for (const name of xfsCases) results.push(notRun(NAME, name, 'skipped', why));
    } else {
      try {
        xfs = makeXfs(ctx, 20 * GiB);
      } catch (err) {
        for (const name of xfsCases) results.push(notRun(NAME, name, 'error', (err as Error).message));
      }
    }
    if (xfs) {
      try {
        for (const [i, reflink] of (['always', 'never'] as const).entries()) {
          const base = join(xfs.path, reflink);
          mkdirSync(base);
          results.push(await runCase(ctx, { name: xfsCases[i]!, base, reflink }));
        }
      } finally {
        xfs.cleanup();
      }
    }
    results[0]?.notes.push(
      `volume: 10 GiB sparse with ${data.chunks} × 1 MiB of random data every ${data.stride / MiB} MiB; warm page cache, no fsync in the timed part (sync between reps)`,
    );
    return results;
  },
};
