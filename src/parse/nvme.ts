import { backendFailure, invalidArgument } from '../util/errors.js';

/** An NVMe/TCP portal: the address family, address and port of a target's port. */
export interface NvmePortal {
  adrfam: 'ipv4' | 'ipv6';
  /** Without brackets; IPv6 in lower case. */
  traddr: string;
  /** The TCP port as a decimal string, without leading zeros. */
  trsvcid: string;
}

/** Parses a portal `192.0.2.10:4420` or `[2001:db8::1]:4420`. */
export function parseNvmePortal(portal: string): NvmePortal {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(portal);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535)
    throw invalidArgument(`portal: ${JSON.stringify(portal)} is not address:port (IPv6 in brackets)`);
  return m[1]
    ? { adrfam: 'ipv6', traddr: m[1].toLowerCase(), trsvcid: String(Number(m[3])) }
    : { adrfam: 'ipv4', traddr: m[2]!, trsvcid: String(Number(m[3])) };
}

/** The parts of `nvme id-ns DEV -o json` (nvme-cli 2.x) Cairn uses. */
export interface NvmeNamespaceIdentity {
  /** Namespace size in logical blocks (NSZE). */
  blocks: number;
  /** Bytes per logical block of the format in use (2^LBADS). */
  blockBytes: number;
  /** `blocks × blockBytes`: the size the controller reports right now. */
  sizeBytes: number;
  /** 32 lower-case hex digits; all zeros when the namespace has none. */
  nguid: string;
}

/**
 * Parses `nvme id-ns DEV -o json`. The format in use is `flbas` bits 0–3 (bits 5–6 extend it
 * beyond 16 formats), an index into `lbafs`, whose `ds` is log2 of the block size.
 */
export function parseNvmeIdNs(stdout: string): NvmeNamespaceIdentity {
  let v: unknown;
  try {
    v = JSON.parse(stdout);
  } catch (err) {
    throw backendFailure(`nvme id-ns printed output that is not JSON: ${(err as Error).message}`);
  }
  const o = (v ?? {}) as Record<string, unknown>;
  const { nsze, flbas, lbafs, nguid } = o;
  if (typeof nsze !== 'number' || typeof flbas !== 'number' || !Array.isArray(lbafs)) {
    throw backendFailure('nvme id-ns: expected numbers nsze and flbas and a list lbafs');
  }
  const index = (flbas & 0x0f) | ((flbas & 0x60) >> 1);
  const ds = (lbafs[index] as Record<string, unknown> | undefined)?.ds;
  if (typeof ds !== 'number' || ds < 0 || ds > 31)
    throw backendFailure(`nvme id-ns: no LBA format ${index} with a data size (ds)`);
  const blockBytes = 2 ** ds;
  return {
    blocks: nsze,
    blockBytes,
    sizeBytes: nsze * blockBytes,
    nguid: typeof nguid === 'string' ? nguid.toLowerCase() : '0'.repeat(32),
  };
}

/**
 * Parses a controller's `address` in sysfs (`/sys/class/nvme/nvmeX/address`), e.g.
 * `traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1`, into its fields.
 */
export function parseNvmeAddress(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.trim().split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** Why `nvme connect` failed, from what nvme-cli printed. */
export type NvmeConnectFailure =
  /** A controller to this subsystem at this address exists already (any host NQN). */
  | 'already-connected'
  /** The target answered and refused: the host NQN is not allowed, or there is no such subsystem. */
  | 'rejected'
  /** Nothing listens at the address (TCP RST). */
  | 'refused'
  /** No answer in time: no route, a dropped SYN, or a peer that never completed the handshake. */
  | 'unreachable'
  | 'other';

/**
 * Classifies `nvme connect` output (nvme-cli 2.x: `Failed to write to /dev/nvme-fabrics: <errno
 * text>`). The kernel returns EIO when the target answered the Connect command with an error,
 * which is how a host NQN missing from `allowed_hosts` (and an unknown subsystem) show.
 */
export function classifyNvmeConnectError(output: string): NvmeConnectFailure {
  if (/already connected/i.test(output)) return 'already-connected';
  if (/Input\/output error/i.test(output)) return 'rejected';
  if (/Connection refused/i.test(output)) return 'refused';
  if (/timed out|Resource temporarily unavailable|No route to host|Network is unreachable/i.test(output))
    return 'unreachable';
  return 'other';
}
