import { readFile } from 'node:fs/promises';
import { arch, hostname, networkInterfaces, platform } from 'node:os';
import type { HostConnector } from '../core/records.js';

/**
 * This host's connector properties: what a backend needs to export a volume here. The iSCSI
 * initiator name and NVMe host NQN/ID are included when the host has them configured.
 */
export async function localHostConnector(opts: { multipath?: boolean } = {}): Promise<HostConnector> {
  const ips: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal) ips.push(a.address);
  }
  const [initiator, nqn, hostId] = await Promise.all([
    readFile('/etc/iscsi/initiatorname.iscsi', 'utf8').then(
      (t) => /^InitiatorName=(\S+)/m.exec(t)?.[1],
      () => undefined,
    ),
    readFile('/etc/nvme/hostnqn', 'utf8').then(
      (t) => t.trim() || undefined,
      () => undefined,
    ),
    readFile('/etc/nvme/hostid', 'utf8').then(
      (t) => t.trim() || undefined,
      () => undefined,
    ),
  ]);
  const connector: HostConnector = {
    host: hostname(),
    platform: arch(),
    osType: platform(),
    ips,
    multipath: opts.multipath ?? false,
  };
  if (initiator) connector.initiator = initiator;
  if (nqn) connector.nqn = nqn;
  if (hostId) connector.hostId = hostId;
  return connector;
}
