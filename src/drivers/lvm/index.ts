import type { DriverModule } from '../spi.js';
import { lvmConfigSchema } from './config.js';
import { createLvmDriver } from './driver.js';

/** The `lvm` driver: LVs of one volume group, thin (in a thin pool) or thick. */
export const lvmDriver: DriverModule<typeof lvmConfigSchema> = {
  name: 'lvm',
  configSchema: lvmConfigSchema,
  create: createLvmDriver,
};
export default lvmDriver;
