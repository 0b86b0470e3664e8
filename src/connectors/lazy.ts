import type { Connector } from './spi.js';

/**
 * A connector whose module is imported on first use: the iSCSI, NVMe-oF and NBD connectors
 * (and what they import) cost nothing to a program that never attaches over them.
 */
export function lazyConnector(protocol: string, load: () => Promise<Connector>): Connector {
  let loaded: Promise<Connector> | undefined;
  const get = () => {
    loaded ??= load();
    return loaded;
  };
  return {
    protocol,
    attach: async (info, opts) => (await get()).attach(info, opts),
    detach: async (info, device, opts) => (await get()).detach(info, device, opts),
    extend: async (info, device) => (await get()).extend(info, device),
    findDevices: async (info) => (await get()).findDevices(info),
    deviceSize: async (device) => (await get()).deviceSize(device),
  };
}
