import { invalidArgument } from '../util/errors.js';
import { loadPlugin } from '../util/plugin.js';
import type { DriverModule } from './spi.js';

// Built-in drivers load on first use, so a program pays only for the drivers it configures.
const BUILT_IN: Record<string, () => Promise<DriverModule>> = {
  file: async () => (await import('./file/index.js')).fileDriver as unknown as DriverModule,
  rbd: async () => (await import('./rbd/index.js')).rbdDriver as unknown as DriverModule,
  lvm: async () => (await import('./lvm/index.js')).lvmDriver as unknown as DriverModule,
};

/** Names of the drivers that ship with Cairn. */
export const builtInDrivers = Object.keys(BUILT_IN);

/** Resolves `driver` (a built-in name, an npm package name, or a module object) to a module. */
export async function resolveDriver(driver: unknown): Promise<DriverModule> {
  if (typeof driver === 'object' && driver !== null && 'create' in driver && 'configSchema' in driver) {
    return driver as DriverModule;
  }
  if (typeof driver !== 'string' || driver.length === 0) {
    throw invalidArgument(
      `driver: missing or not a string (got ${JSON.stringify(driver)}); allowed: ${builtInDrivers.join(', ')}, an npm package name, or a driver module`,
    );
  }
  const builtIn = BUILT_IN[driver];
  if (builtIn) return builtIn();
  if (!driver.includes('/') && !driver.startsWith('cairn-driver-') && !driver.startsWith('@')) {
    throw invalidArgument(
      `driver: unknown driver "${driver}"; allowed: ${builtInDrivers.join(', ')}, or a package name (scoped, or starting with "cairn-driver-")`,
    );
  }
  return loadPlugin<DriverModule>(driver, 'driver', 'driver');
}
