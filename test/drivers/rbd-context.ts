import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverTestContext } from '../conformance/driver.js';
import type { BackendSpec } from '../harness/backends.js';
import { startCeph } from '../harness/ceph.js';
import { run } from '../harness/exec.js';
import { unmountAllUnder } from '../harness/mounts.js';
import { tempDir } from '../harness/tmp.js';

/**
 * Prepares an `rbd` backend for the conformance suite on a private single-node Ceph cluster.
 * The context's root holds only the rbd-fuse mount points (`CAIRN_RUN_DIR`), so the suite sees
 * the loop devices the connector makes; the cluster's own files live in another directory.
 * RBD has no thick provisioning: the thick cases use a thick `file` backend under the root.
 */
export async function rbdContext(spec: BackendSpec): Promise<DriverTestContext> {
  if ('path' in spec.storage || spec.storage.harness !== 'ceph') {
    throw new Error(`backend ${spec.name}: the rbd driver is tested with "harness: ceph" only`);
  }
  const ceph = await startCeph();
  const root = await tempDir('cairn-rbd-root-');
  process.env.CAIRN_RUN_DIR = root.path;
  const base = { ...spec.options, driver: 'rbd', pool: ceph.pool, cephConf: ceph.conf };
  return {
    config: base,
    freshConfig: () => ({ ...base }),
    thickConfig: { driver: 'file', path: join(root.path, 'thick'), provisioning: 'thick' },
    requiredFields: ['pool'],
    invalidFields: [
      ['pool', ''],
      ['pool', 'a/b'],
      ['cephConf', 'relative/ceph.conf'],
      ['maxCloneDepth', -1],
      ['timeoutMs', 10],
      ['deleteParentPolicy', 'keep'],
    ],
    expectedCloneSpeed: spec.expect.cloneSpeed,
    foreign: {
      async make(reference, data, size) {
        const file = join(ceph.dir, `${reference}.img`);
        await writeFile(file, data);
        await truncate(file, size);
        await run(['rbd', '-c', ceph.conf, 'import', '--no-progress', '--pool', ceph.pool, file, reference]);
      },
      exists: (reference) =>
        run(['rbd', '-c', ceph.conf, 'info', '--pool', ceph.pool, '--image', reference]).then(
          () => true,
          () => false,
        ),
      remove: (reference) =>
        run(['rbd', '-c', ceph.conf, 'rm', '--no-progress', '--pool', ceph.pool, '--image', reference]).then(
          () => {},
        ),
    },
    root: root.path,
    cleanup: async () => {
      // Unmount rbd-fuse before the cluster goes: a mount whose cluster is gone hangs whoever
      // touches it. A mount still there at this point is a leak the connector should not make.
      const leaked = await unmountAllUnder(root.path);
      await ceph.stop();
      await root.cleanup();
      if (leaked.length > 0) throw new Error(`rbd-fuse mounts left behind: ${leaked.join(', ')}`);
    },
  };
}
