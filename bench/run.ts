/**
 * The benchmark harness: `npm run bench` (or `node dist/bench/run.js`) after a build.
 *   --only NAME   run one benchmark (repeat, or comma-separate, for several)
 *   --quick       fewer iterations and less data: a smoke test (CI), well under a minute
 *   --json FILE   write the JSON results to FILE instead of after the table on stdout
 *   --strict      exit 1 when a case failed (cases skipped for want of root or loop devices don't count)
 *   --list        print the benchmarks and exit
 * The table goes to stdout, progress to stderr. Nothing here asserts on timings.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { attach } from './attach.js';
import { attachProtocols } from './attach-protocols.js';
import { cliStart } from './cli-start.js';
import { clone } from './clone.js';
import { type Benchmark, createContext } from './context.js';
import { createDelete } from './create-delete.js';
import { csi } from './csi.js';
import { importTime } from './import.js';
import { rbd } from './rbd.js';
import { type CaseResult, formatJson, formatTable, notRun, type RunReport } from './report.js';
import { stateOps } from './state-ops.js';
import { fsTypeOf } from './xfs.js';

const BENCHMARKS: readonly Benchmark[] = [
  importTime,
  cliStart,
  createDelete,
  stateOps,
  attach,
  clone,
  csi,
  rbd,
  attachProtocols,
];

const USAGE = `usage: node dist/bench/run.js [--only NAME]... [--quick] [--json FILE] [--strict] [--list]
benchmarks: ${BENCHMARKS.map((b) => b.name).join(', ')}`;

function parse(): { only: string[]; quick: boolean; json?: string; strict: boolean; list: boolean } {
  try {
    const { values } = parseArgs({
      options: {
        only: { type: 'string', multiple: true },
        quick: { type: 'boolean', default: false },
        json: { type: 'string' },
        strict: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const only = (values.only ?? []).flatMap((s) => s.split(',')).filter(Boolean);
    const unknown = only.filter((n) => !BENCHMARKS.some((b) => b.name === n));
    if (unknown.length) throw new Error(`unknown benchmark ${unknown.join(', ')}`);
    return {
      only,
      quick: values.quick ?? false,
      ...(values.json ? { json: values.json } : {}),
      strict: values.strict ?? false,
      list: values.list ?? false,
    };
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}

function environment(repoRoot: string, loadBefore: number[]): Record<string, unknown> {
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' });
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: repoRoot, encoding: 'utf8' });
  const cpu = cpus();
  return {
    node: process.version,
    platform: process.platform,
    arch: arch(),
    kernel: release(),
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? null,
    memoryBytes: totalmem(),
    // Other work on the machine skews every number: the 1-minute load before and after the run.
    loadAverage1m: { before: loadBefore[0], after: loadavg()[0] },
    root: typeof process.getuid === 'function' && process.getuid() === 0,
    tmpdir: tmpdir(),
    tmpdirFs: fsTypeOf(tmpdir()),
    commit: git.status === 0 ? git.stdout.trim() : null,
    srcModified: dirty.status === 0 ? dirty.stdout.trim().length > 0 : null,
  };
}

async function main(): Promise<number> {
  const opts = parse();
  if (opts.list) {
    for (const b of BENCHMARKS) process.stdout.write(`${b.name.padEnd(14)} ${b.description}\n`);
    return 0;
  }
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const ctx = createContext({ quick: opts.quick, repoRoot, verbose: true });
  const cleanUp = () => {
    for (const failed of ctx.cleanup.runAll()) process.stderr.write(`cleanup failed: ${failed}\n`);
  };
  process.on('exit', cleanUp);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: cleaning up\n`);
      cleanUp();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }

  const selected = opts.only.length ? BENCHMARKS.filter((b) => opts.only.includes(b.name)) : BENCHMARKS;
  const startedAt = new Date();
  const loadBefore = loadavg();
  const results: CaseResult[] = [];
  for (const b of selected) {
    process.stderr.write(`${b.name}: ${b.description}\n`);
    const t0 = performance.now();
    try {
      results.push(...(await b.run(ctx)));
    } catch (err) {
      results.push(notRun(b.name, '-', 'error', (err as Error).stack ?? String(err)));
    }
    cleanUp(); // whatever a benchmark left registered goes before the next one starts
    process.stderr.write(`${b.name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }

  const report: RunReport = {
    tool: 'cairn-bench',
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    quick: opts.quick,
    units: { latency: 'ms', opsPerSec: 'operations per second', ratio: 'cairn time / floor time' },
    environment: environment(repoRoot, loadBefore),
    results,
  };
  const env = report.environment;
  const load = env.loadAverage1m as { before: number; after: number };
  process.stdout.write(
    `\ncairn bench${opts.quick ? ' --quick' : ''}: node ${process.version}, ${env.platform} ${env.kernel}, ${env.cpus} × ${env.cpuModel}, ` +
      `tmp on ${env.tmpdirFs}, load (1 min) ${load.before.toFixed(2)} → ${load.after.toFixed(2)}, commit ${env.commit ?? '?'}${env.srcModified ? ' + changes' : ''}\n\n`,
  );
  process.stdout.write(formatTable(results));
  if (opts.json) {
    writeFileSync(opts.json, formatJson(report));
    process.stderr.write(`results written to ${opts.json}\n`);
  } else {
    process.stdout.write(`\n${formatJson(report)}`);
  }
  const failed = results.filter((r) => r.status === 'error');
  for (const r of failed) process.stderr.write(`error: ${r.benchmark} / ${r.case}: ${r.reason}\n`);
  return opts.strict && failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
