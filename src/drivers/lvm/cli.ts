import { dirname } from 'node:path';
import type { CommandRunner } from '../../exec/runner.js';
import { LV_FIELDS, parseVgReport, parseVgs, VG_FIELDS, type VgReport } from '../../parse/lvm.js';
import {
  alreadyExists,
  backendFailure,
  CairnError,
  insufficientCapacity,
  invalidState,
  notFound,
} from '../../util/errors.js';

/** How to run LVM's tools: the configuration directory and the bound on each command. */
export interface LvmAccess {
  runner: CommandRunner;
  /** An lvm.conf path: its directory becomes LVM_SYSTEM_DIR. */
  lvmConf?: string | undefined;
  timeoutMs: number;
}

// Every exit code comes back to be mapped here: LVM exits 5 for nearly every failure, and only
// its message tells a missing LV from a full VG.
const ANY_EXIT = Array.from({ length: 256 }, (_, i) => i);

type Make = (message: string, options?: { details?: Record<string, unknown> }) => Error;

/** LVM messages that mean something Cairn has a code for (LVM prints them in English). */
const MEANINGS: Array<[RegExp, Make, Record<string, unknown>?]> = [
  [/already exists in volume group/, alreadyExists],
  [/Failed to find logical volume|Volume group "[^"]*" not found|Pool \S+ not found/, notFound],
  [
    /insufficient free space|Insufficient suitable allocatable extents|free space in thin pool/i,
    insufficientCapacity,
  ],
  [/ in use\.|contains a filesystem in use|Can't remove open logical volume/, invalidState],
  [/matches existing size/, invalidState, { sameSize: true }],
  [/Snapshot origin volumes can be resized only while inactive/, invalidState, { originActive: true }],
];

/**
 * Runs an LVM tool (`lvcreate`, `vgs`…) as root and maps its failure to a CairnError:
 * ALREADY_EXISTS, NOT_FOUND, INSUFFICIENT_CAPACITY, INVALID_STATE (in use), or BACKEND_FAILURE
 * with LVM's own message. `what` names the object for the message.
 */
export async function runLvm(a: LvmAccess, argv: readonly string[], what: string): Promise<string> {
  const full = a.lvmConf ? ['env', `LVM_SYSTEM_DIR=${dirname(a.lvmConf)}`, ...argv] : [...argv];
  const r = await a.runner.run(full, { root: true, timeoutMs: a.timeoutMs, okExitCodes: ANY_EXIT });
  if (r.exitCode === 0) return r.stdout;
  // Only LVM's own lines: not the warnings it prints on the way (thin pool overcommit…).
  const msg = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('WARNING:') && !/^File descriptor \d+ .* leaked/.test(l))
    .join(' ');
  const text = `${what}: ${argv[0]} failed (exit ${r.exitCode}): ${msg || r.stdout.trim()}`;
  const meaning = MEANINGS.find(([re]) => re.test(msg));
  const details = { exitCode: r.exitCode, ...meaning?.[2] };
  throw (meaning?.[1] ?? backendFailure)(text, { details });
}

/** True when {@link runLvm} failed with LVM's message `flag` stands for (`sameSize`, `originActive`). */
export const lvmSaid = (err: unknown, flag: 'sameSize' | 'originActive'): boolean =>
  err instanceof CairnError && err.details?.[flag] === true;

const REPORT = ['--reportformat', 'json', '--units', 'b', '--nosuffix'];

/**
 * The VG and its visible LVs, from one `vgs` (the VG alone needs a second one only when it has
 * no LV). Throws NOT_FOUND when the VG does not exist.
 */
export async function readVg(a: LvmAccess, vg: string): Promise<VgReport> {
  const out = await runLvm(
    a,
    ['vgs', ...REPORT, '-o', [...VG_FIELDS, ...LV_FIELDS].join(','), '--', vg],
    `volume group ${vg}`,
  );
  const report = parseVgReport(out);
  if (report.vg) return report;
  const alone = parseVgs(
    await runLvm(a, ['vgs', ...REPORT, '-o', VG_FIELDS.join(','), '--', vg], `volume group ${vg}`),
  );
  if (!alone) throw notFound(`volume group ${vg}: not found`);
  return { vg: alone, lvs: [] };
}
