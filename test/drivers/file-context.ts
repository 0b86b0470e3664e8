import { mkdir, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverTestContext } from '../conformance/driver.js';
import type { BackendSpec } from '../harness/backends.js';
import { tempDir } from '../harness/tmp.js';
import { createXfs } from '../harness/xfs.js';

/**
 * Prepares a `file` backend for the conformance suite. Everything lives under one root: the
 * harness's file system, or a fresh sub-directory of the configured path, so the suite never
 * touches what was there before.
 */
export async function fileContext(spec: BackendSpec): Promise<DriverTestContext> {
  let root: string;
  let cleanup: () => Promise<void>;
  if ('path' in spec.storage) {
    await mkdir(spec.storage.path, { recursive: true });
    ({ path: root, cleanup } = await tempDir('cairn-conformance-', spec.storage.path));
  } else if (spec.storage.harness === 'xfs') {
    ({ path: root, cleanup } = await createXfs());
  } else {
    ({ path: root, cleanup } = await tempDir('cairn-conformance-'));
  }
  let fresh = 0;
  return {
    config: { ...spec.options, driver: 'file', path: join(root, 'pool') },
    freshConfig: () => ({ ...spec.options, driver: 'file', path: join(root, `fresh-${++fresh}`) }),
    thickConfig: { ...spec.options, driver: 'file', path: join(root, 'thick'), provisioning: 'thick' },
    requiredFields: ['path'],
    invalidFields: [
      ['path', 'relative/dir'],
      ['path', ''],
      ['provisioning', 'thicc'],
      ['reflink', 'sometimes'],
    ],
    expectedCloneSpeed: spec.expect.cloneSpeed,
    foreign: {
      async make(reference, data, size) {
        const path = join(root, 'pool', reference);
        await writeFile(path, data, { flag: 'wx' });
        await truncate(path, size);
      },
      exists: (reference) =>
        stat(join(root, 'pool', reference)).then(
          () => true,
          () => false,
        ),
      remove: (reference) => unlink(join(root, 'pool', reference)),
    },
    root,
    cleanup,
  };
}
