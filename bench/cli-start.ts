import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchContext, Benchmark } from './context.js';
import { spawnTimed, timeInterleaved } from './proc.js';
import { type CaseResult, compare, type Measurement, notRun } from './report.js';
import { summarize } from './stats.js';

const NAME = 'cli-start';
const CASE = 'volume list --json, default state';

/** The environment of a zero-config user whose data, config and cache live under `home`. */
function zeroConfigEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CAIRN_')) env[k] = v;
  for (const [k, sub] of [
    ['XDG_DATA_HOME', 'data'],
    ['XDG_CONFIG_HOME', 'config'],
    ['XDG_STATE_HOME', 'state'],
    ['XDG_CACHE_HOME', 'cache'],
  ] as const) {
    env[k] = join(home, sub);
    mkdirSync(env[k], { recursive: true });
  }
  return env;
}

async function runCase(ctx: BenchContext): Promise<CaseResult> {
  const main = join(ctx.repoRoot, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(main)) {
    return notRun(NAME, CASE, 'error', `cli not built: ${main} not found (run npm run build)`);
  }
  const home = ctx.tempDir('cli');
  try {
    const env = zeroConfigEnv(home.path);
    const cwd = join(home.path, 'cwd');
    mkdirSync(cwd);
    const notes: string[] = [];

    // The first run initialises the default state (creates and migrates the SQLite file).
    const cli = [process.execPath, main, 'volume', 'list', '--json'];
    const first = spawnTimed(cli, { cwd, env });
    if (first.status !== 0) {
      const why = (first.stderr.trim() || first.stdout.trim()).slice(0, 500);
      return notRun(
        NAME,
        CASE,
        'error',
        `first run of cairn volume list --json failed (exit ${first.status}): ${why}`,
      );
    }
    try {
      JSON.parse(first.stdout);
    } catch {
      notes.push(`stdout of volume list --json is not JSON: ${JSON.stringify(first.stdout.slice(0, 120))}`);
    }
    const db = join(env.XDG_DATA_HOME!, 'cairn', 'cairn.db');
    if (!existsSync(db))
      notes.push(`the first run did not create ${db}; the sqlite floor opens an empty database`);
    notes.push(`first (initialising) run: ${first.ms.toFixed(0)} ms`);

    const index = pathToFileURL(join(ctx.repoRoot, 'dist', 'src', 'index.js')).href;
    const sqlite = import.meta.resolve('better-sqlite3');
    // The packages the CLI loads to list volumes from SQLite state (kysely only loads to migrate).
    const deps = ['commander', 'yaml', 'zod'].map((d) => import.meta.resolve(d));
    const library = [
      `const { Cairn } = await import(${JSON.stringify(index)});`,
      'const cairn = await Cairn.open();',
      'const vols = await cairn.volumes();',
      'process.stdout.write(JSON.stringify(vols) + "\\n");',
      'await cairn.close();',
    ];
    const bare = (withDeps: boolean) => [
      ...(withDeps ? deps.map((d) => `await import(${JSON.stringify(d)});`) : []),
      `const { default: Database } = await import(${JSON.stringify(sqlite)});`,
      `const db = new Database(${JSON.stringify(db)});`,
      'const rows = db.prepare("SELECT name FROM sqlite_master").all();',
      'process.stdout.write(JSON.stringify(rows) + "\\n");',
      'db.close();',
    ];
    const script = (lines: string[]) => [process.execPath, '--input-type=module', '-e', lines.join('\n')];
    const commands = [
      { label: 'cairn volume list --json', argv: cli },
      { label: 'library: import + Cairn.open() + volumes()', argv: script(library) },
      { label: 'node -e 0', argv: [process.execPath, '-e', '0'] },
      { label: 'node + better-sqlite3 open + query', argv: script(bare(false)) },
      { label: 'same + import commander, yaml, zod', argv: script(bare(true)) },
    ];
    const samples = timeInterleaved(commands, ctx.quick ? 3 : 20, { cwd, env });
    const m = commands.map(
      (c, i): Measurement => ({
        label: c.label,
        role: i < 2 ? 'cairn' : 'floor',
        latency: summarize(samples[i]!),
      }),
    );
    const [cliM, libM, ...floors] = m as [Measurement, Measurement, ...Measurement[]];
    for (const subject of [cliM, libM]) for (const floor of floors) compare(subject, floor);
    notes.push(
      "the library row is the same work without the CLI layer; the last floor loads the packages the CLI loads, so cairn ÷ it is the cost of Cairn's own code",
    );
    return { benchmark: NAME, case: CASE, status: 'ok', measurements: m, notes };
  } catch (err) {
    return notRun(NAME, CASE, 'error', (err as Error).message);
  } finally {
    home.remove();
  }
}

/** Wall time of a fresh `cairn volume list --json`, against bare Node starts. */
export const cliStart: Benchmark = {
  name: NAME,
  description:
    'cold start of `cairn volume list --json` (zero-config, state initialised); floors: node -e 0, node + better-sqlite3 (+ the CLI packages)',
  async run(ctx) {
    return [await runCase(ctx)];
  },
};
