import type { DriverModule } from '../spi.js';
import { fileConfigSchema } from './config.js';
import { createFileDriver } from './driver.js';

/** The `file` driver: sparse raw files in a directory, reflink snapshots where possible. */
export const fileDriver: DriverModule<typeof fileConfigSchema> = {
  name: 'file',
  configSchema: fileConfigSchema,
  create: createFileDriver,
};
export default fileDriver;
