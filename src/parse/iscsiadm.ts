/**
 * Parsers for open-iscsi's `iscsiadm` output (2.1.x), and the meaning of its exit codes.
 * iscsiadm has no machine-readable output format; these lines have been stable for years.
 */

/** A target at a portal, as `-m discovery -t sendtargets` and `-m node` list them. */
export interface IscsiTargetRecord {
  /** `address:port`, IPv6 addresses in brackets, as iscsiadm's `-p` takes them. */
  portal: string;
  /** The target portal group tag; -1 for a node record made with `-o new`. */
  tpgt: number;
  target: string;
}

/** One line of `iscsiadm -m session`. */
export interface IscsiSessionRecord extends IscsiTargetRecord {
  /** The session id (`-r SID`), the N of /sys/class/iscsi_session/sessionN. */
  sid: number;
  transport: string;
}

/**
 * Parses `iscsiadm -m discovery -t sendtargets -p P` and `iscsiadm -m node`: one
 * `portal,tpgt target` a line (`10.0.0.1:3260,1 iqn.…`). Lines of any other shape (messages
 * such as `iscsiadm: No portals found`) are skipped.
 */
export function parseIscsiTargets(stdout: string): IscsiTargetRecord[] {
  const out: IscsiTargetRecord[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\S+):(\d+),(-?\d+) (\S+)$/.exec(line.trim());
    if (m) out.push({ portal: `${m[1]}:${m[2]}`, tpgt: tpgt(m[3]!), target: m[4]! });
  }
  return out;
}

/**
 * Parses `iscsiadm -m session`: `tcp: [3] 10.0.0.1:3260,1 iqn.… (non-flash)` a line. No
 * session at all is exit code 21 with `iscsiadm: No active sessions.` on stderr.
 */
export function parseIscsiSessions(stdout: string): IscsiSessionRecord[] {
  const out: IscsiSessionRecord[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\w+): \[(\d+)\] (\S+):(\d+),(-?\d+) (\S+)(?: \(.*\))?$/.exec(line.trim());
    if (m) {
      out.push({
        transport: m[1]!,
        sid: Number(m[2]),
        portal: `${m[3]}:${m[4]}`,
        tpgt: tpgt(m[5]!),
        target: m[6]!,
      });
    }
  }
  return out;
}

/** iscsiadm's exit codes (open-iscsi `include/iscsi_err.h`) that Cairn acts on. */
export const IscsiExit = {
  /** Connection failure (e.g. refused). */
  Transport: 4,
  /** A login or connect did not finish in time (also given for refused connections). */
  TransportTimeout: 8,
  /** `--login` while a session to that node and portal exists. */
  SessionExists: 15,
  /** The target refused the login for good: with tgt, no such target or the initiator is not in its ACL. */
  FatalLogin: 19,
  /** Nothing matched: no session, no node record, no portal. */
  NoObjectsFound: 21,
  /** A session id that does not exist (anymore). */
  SysfsLookup: 22,
  /** CHAP failed, or (LIO) the initiator is not in the ACL. */
  LoginAuthFailed: 24,
} as const;

/** A short reason for an iscsiadm exit code, for error messages. */
export function iscsiadmExitReason(code: number): string {
  switch (code) {
    case IscsiExit.Transport:
      return 'could not connect to the portal';
    case IscsiExit.TransportTimeout:
      return 'the portal did not answer in time';
    case IscsiExit.SessionExists:
      return 'a session already exists';
    case IscsiExit.FatalLogin:
      return 'the target refused the login (no such target, or this initiator is not allowed)';
    case IscsiExit.NoObjectsFound:
      return 'no matching record or session';
    case IscsiExit.LoginAuthFailed:
      return 'authentication or authorization failed';
    default:
      return `iscsiadm exit code ${code}`;
  }
}

/** iscsiadm prints a tpgt it does not know (-1) as 4294967295. */
function tpgt(text: string): number {
  const n = Number(text);
  return n === 4294967295 ? -1 : n;
}
