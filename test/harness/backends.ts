import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';

/**
 * The backends the driver conformance suite runs against. `CAIRN_TEST_BACKENDS` names a YAML or
 * JSON file shaped like cinderlib's functional-test configuration:
 *
 * ```yaml
 * backends:
 *   fast:                     # a name, used in test titles
 *     driver: file
 *     path: /mnt/xfs/cairn    # the suite works in a fresh sub-directory of it and removes it
 *     test: { cloneSpeed: instant }   # optional: what the backend must report
 *   scratch:
 *     driver: file
 *     harness: xfs            # instead of path: storage the harness makes (tmp | xfs | ceph)
 *   ceph:
 *     driver: rbd
 *     harness: ceph           # a private single-node Ceph cluster (test/harness/ceph.ts)
 * ```
 *
 * Every other field is the driver's own configuration. Without the variable, the suite runs
 * against {@link DEFAULT_BACKENDS}: the file driver on the host's temp directory (no reflink)
 * and on an XFS file system with reflink on a loop device, and the rbd driver on a private
 * single-node Ceph cluster.
 */
export interface BackendSpec {
  name: string;
  driver: string;
  /** Where the storage comes from: a directory given by the user, or a harness. */
  storage: { path: string } | { harness: 'tmp' | 'xfs' | 'ceph' };
  /** The driver's own configuration fields (without `driver`, `path`, `harness`, `test`). */
  options: Record<string, unknown>;
  expect: { cloneSpeed?: 'instant' | 'copy' | undefined };
}

const specSchema = z
  .looseObject({
    driver: z.string().min(1),
    path: z.string().startsWith('/').optional(),
    harness: z.enum(['tmp', 'xfs', 'ceph']).optional(),
    test: z.strictObject({ cloneSpeed: z.enum(['instant', 'copy']).optional() }).optional(),
  })
  .refine(
    (b) => (b.path === undefined) !== (b.harness === undefined),
    'give exactly one of path and harness',
  );
const fileSchema = z.strictObject({ backends: z.record(z.string(), specSchema) });

export const DEFAULT_BACKENDS = {
  backends: {
    'file on the host temp dir (no reflink)': {
      driver: 'file',
      harness: 'tmp',
      test: { cloneSpeed: 'copy' },
    },
    'file on xfs with reflink': { driver: 'file', harness: 'xfs', test: { cloneSpeed: 'instant' } },
    'rbd on a single-node Ceph cluster': { driver: 'rbd', harness: 'ceph', test: { cloneSpeed: 'instant' } },
  },
};

/** The backends to test: from the file `CAIRN_TEST_BACKENDS` names, else the defaults. */
export async function backendSpecs(env: NodeJS.ProcessEnv = process.env): Promise<BackendSpec[]> {
  const file = env.CAIRN_TEST_BACKENDS;
  const raw: unknown = file ? parse(await readFile(file, 'utf8')) : DEFAULT_BACKENDS;
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      `CAIRN_TEST_BACKENDS ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return Object.entries(parsed.data.backends).map(([name, b]) => {
    const { driver, path, harness, test, ...options } = b;
    return {
      name,
      driver,
      storage: path !== undefined ? { path } : { harness: harness ?? 'tmp' },
      options,
      expect: { cloneSpeed: test?.cloneSpeed },
    };
  });
}
