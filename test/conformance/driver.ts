/**
 * The driver conformance suite: one set of cases every driver must pass against a real backend,
 * as cinderlib's functional tests. A driver's test calls {@link runDriverConformance} once per
 * backend with a function that prepares the backend's storage (see test/drivers/).
 */
import { after, afterEach, before, describe } from 'node:test';
import { Cairn } from '../../src/index.js';
import { detachLoopsUnder } from '../harness/loops.js';
import { tempDir } from '../harness/tmp.js';
import { concurrencyCases } from './driver-concurrency.js';
import { dataCases } from './driver-data.js';
import type { DriverSuite, DriverTestContext } from './driver-helpers.js';
import { sweep } from './driver-helpers.js';
import { invalidConfigCases, invalidInputCases } from './driver-invalid.js';
import { lifecycleCases } from './driver-lifecycle.js';
import { manageCases } from './driver-manage.js';

export type { DriverTestContext, LocalDevices } from './driver-helpers.js';

/** The suite's groups of cases, in the order they run. */
const GROUPS = {
  lifecycle: lifecycleCases,
  data: dataCases,
  concurrency: concurrencyCases,
  manage: manageCases,
  invalidInput: invalidInputCases,
  invalidConfig: invalidConfigCases,
} as const;
export type ConformanceGroup = keyof typeof GROUPS;

/**
 * Runs every case against the backend `makeContext` prepares. Each case starts with an empty
 * backend and removes what it made (also when it fails); the storage itself and every loop
 * device backed by a file under `context.root` are removed when the suite ends. `opts.groups`
 * runs only some groups: for a second variant of a driver whose first variant ran them all,
 * where time is short (the test VM).
 */
export function runDriverConformance(
  label: string,
  makeContext: () => Promise<DriverTestContext>,
  opts: { groups?: readonly ConformanceGroup[] } = {},
): void {
  describe(`driver conformance: ${label}`, () => {
    let suite: DriverSuite | undefined;
    const get = (): DriverSuite => {
      if (!suite) throw new Error('the driver suite did not start (see the before hook)');
      return suite;
    };
    const cleanups: Array<() => Promise<unknown>> = [];

    before(async () => {
      const ctx = await makeContext();
      cleanups.push(
        () => ctx.cleanup(),
        () => detachLoopsUnder(ctx.root),
      );
      const state = await tempDir('cairn-conformance-state-');
      cleanups.push(() => state.cleanup());
      const cairn = await Cairn.open({
        ...ctx.openOptions,
        state: `sqlite:${state.path}/state.db`,
        lockTimeoutMs: 60_000,
      });
      cleanups.push(() => cairn.close());
      const backend = await cairn.addBackend('under-test', ctx.config);
      suite = { ctx, cairn, backend, stateDir: state.path };
    });

    afterEach(async () => {
      if (suite) await sweep(suite);
    });

    after(async () => {
      let first: unknown;
      for (const step of cleanups.splice(0).reverse()) await step().catch((err) => (first ??= err));
      if (first !== undefined) throw first;
    });

    for (const [name, cases] of Object.entries(GROUPS))
      if (!opts.groups || opts.groups.includes(name as ConformanceGroup)) cases(get);
  });
}
