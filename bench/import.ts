import type { Benchmark } from './context.js';
import { timeInterleaved } from './proc.js';
import { compare, type Measurement, notRun } from './report.js';
import { summarize } from './stats.js';

const NAME = 'import';
const CASE = "import('cairn')";

/**
 * Time of `import('cairn')` in a fresh Node process (resolved through the package's own
 * `exports`, from the repository root), against `node -e 0`.
 */
export const importTime: Benchmark = {
  name: NAME,
  description: "fresh-process import('cairn') (dist/src/index.js); floors: node -e 0, import('zod')",
  async run(ctx) {
    const commands = [
      { label: `node -e "import('cairn')"`, argv: [process.execPath, '-e', "import('cairn')"] },
      { label: 'node -e 0', argv: [process.execPath, '-e', '0'] },
      // zod is the one package Cairn loads at import: what any zod user pays.
      { label: `node -e "import('zod')"`, argv: [process.execPath, '-e', "import('zod')"] },
    ];
    let samples: number[][];
    try {
      samples = timeInterleaved(commands, ctx.quick ? 3 : 30, { cwd: ctx.repoRoot });
    } catch (err) {
      return [notRun(NAME, CASE, 'error', (err as Error).message)];
    }
    const [cairn, ...floors] = commands.map(
      (c, i): Measurement => ({
        label: c.label,
        role: i === 0 ? 'cairn' : 'floor',
        latency: summarize(samples[i]!),
      }),
    ) as [Measurement, ...Measurement[]];
    for (const floor of floors) compare(cairn, floor);
    return [{ benchmark: NAME, case: CASE, status: 'ok', measurements: [cairn, ...floors], notes: [] }];
  },
};
