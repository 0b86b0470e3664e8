// Runs the driver conformance suite against every backend CAIRN_TEST_BACKENDS lists, or by
// default against the file driver on the host temp dir and on XFS with reflink (see
// test/harness/backends.ts for the file format).
import { runDriverConformance } from '../conformance/driver.js';
import { backendSpecs } from '../harness/backends.js';
import { fileContext } from './file-context.js';
import { rbdContext } from './rbd-context.js';

const contexts = { file: fileContext, rbd: rbdContext };

for (const spec of await backendSpecs()) {
  const make = contexts[spec.driver as keyof typeof contexts];
  if (!make) throw new Error(`no conformance context for driver "${spec.driver}" (backend ${spec.name})`);
  runDriverConformance(spec.name, () => make(spec));
}
