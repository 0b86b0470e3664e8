import type { DriverModule } from '../spi.js';
import { rbdConfigSchema } from './config.js';
import { createRbdDriver } from './driver.js';

/** The `rbd` driver: Ceph RBD images through the `rbd` and `ceph` command-line tools. */
export const rbdDriver: DriverModule<typeof rbdConfigSchema> = {
  name: 'rbd',
  configSchema: rbdConfigSchema,
  create: createRbdDriver,
};
export default rbdDriver;
