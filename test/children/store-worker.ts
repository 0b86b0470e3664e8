// Child process: a Cairn context on the state URL with a `file` backend named "pool" on POOL_DIR
// and lock files (if any were used) under LOCK_DIR. When told "go", runs JOB and reports.
// Usage: node store-worker.js STATE_URL POOL_DIR LOCK_DIR JOB_JSON
//   {"op":"create","name":N}                 create a 1 MiB volume named N
//   {"op":"extend","volume":REF,"times":T}   T times: read the size, extend by 1 MiB
//   {"op":"snapshot","volume":REF,"prefix":P,"times":T}  T snapshots named P-0, P-1, …
//   {"op":"churn","prefix":P,"times":T}      T times: create a volume P-i, extend it, delete it
import { Cairn, isCairnError } from '../../src/index.js';
import { report, waitForGo } from './wait-go.js';

const MiB = 1024 * 1024;
const [url, pool, lockDir, job] = process.argv.slice(2) as [string, string, string, string];
const spec = JSON.parse(job) as {
  op: string;
  name?: string;
  volume?: string;
  prefix?: string;
  times?: number;
};
const cairn = await Cairn.open({ state: url, lockDir });
const backend = await cairn.addBackend('pool', { driver: 'file', path: pool });
report({ ready: true });
await waitForGo();
const errors: Array<{ code: string | null; message: string }> = [];
const note = (err: unknown) =>
  errors.push({ code: isCairnError(err) ? err.code : null, message: String(err) });
try {
  if (spec.op === 'create') {
    try {
      const vol = await backend.createVolume({ size: MiB, name: spec.name! });
      report({ result: 'ok', id: vol.id });
    } catch (err) {
      report({ result: 'error', code: isCairnError(err) ? err.code : null, message: String(err) });
    }
  } else if (spec.op === 'extend') {
    const targets: number[] = [];
    for (let i = 0; i < spec.times!; i++) {
      const vol = await cairn.volume(spec.volume!);
      const target = vol.size + MiB;
      try {
        await vol.extend(target);
        targets.push(target);
      } catch (err) {
        note(err);
      }
    }
    report({ result: 'ok', targets, errors });
  } else if (spec.op === 'snapshot') {
    const vol = await cairn.volume(spec.volume!);
    const made: string[] = [];
    for (let i = 0; i < spec.times!; i++) {
      try {
        made.push((await vol.createSnapshot({ name: `${spec.prefix}-${i}` })).id);
      } catch (err) {
        note(err);
      }
    }
    report({ result: 'ok', made, errors });
  } else if (spec.op === 'churn') {
    for (let i = 0; i < spec.times!; i++) {
      try {
        const vol = await backend.createVolume({ size: MiB, name: `${spec.prefix}-${i}` });
        await vol.extend(2 * MiB);
        await vol.delete();
      } catch (err) {
        note(err);
      }
    }
    report({ result: 'ok', errors });
  } else throw new Error(`unknown job ${job}`);
} finally {
  await cairn.close();
}
