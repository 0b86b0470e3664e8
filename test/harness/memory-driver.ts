import { z } from 'zod';
import type { Driver, DriverModule } from '../../src/index.js';

/**
 * A tiny third-party-style driver whose "backend" is a Map: for tests of what Cairn does around
 * drivers (loading a module object, secrets in configuration and connection info). Its config
 * has secret fields at several depths; its exports hand out a CHAP password and a token.
 */
export const memoryDriverConfig = z.strictObject({
  pool: z.string().min(1),
  password: z.string().optional(),
  auth: z
    .strictObject({ user: z.string(), chapPassword: z.string(), token: z.string(), key: z.string() })
    .optional(),
  keyring: z.string().optional(),
});

export const memoryDriver: DriverModule<typeof memoryDriverConfig> = {
  name: 'test-memory',
  configSchema: memoryDriverConfig,
  async create(config, ctx): Promise<Driver> {
    const volumes = new Map<string, number>();
    const snapshots = new Map<string, number>();
    return {
      capabilities: {
        thin: true,
        snapshots: true,
        cloneSpeed: 'instant',
        revertToSnapshot: false,
        manageExisting: false,
        multiAttach: false,
        onlineExtend: true,
        protocols: ['test'],
        sizeAlignment: 512,
      },
      async createVolume(v) {
        volumes.set(v.id, v.size);
        return { driverData: { pool: config.pool, backend: ctx.backendName } };
      },
      async cloneVolume(v) {
        volumes.set(v.id, v.size);
        return undefined;
      },
      async createVolumeFromSnapshot(v) {
        volumes.set(v.id, v.size);
        return undefined;
      },
      async deleteVolume(v) {
        volumes.delete(v.id);
      },
      async extendVolume(v, size) {
        volumes.set(v.id, size);
        return undefined;
      },
      async createSnapshot(s) {
        snapshots.set(s.id, s.size);
        return undefined;
      },
      async deleteSnapshot(s) {
        snapshots.delete(s.id);
      },
      async stats() {
        const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
        return {
          totalBytes: 2 ** 40,
          freeBytes: 2 ** 40,
          provisionedBytes: sum(volumes) + sum(snapshots),
          allocatedBytes: null,
          thin: true,
          volumeCount: volumes.size,
          snapshotCount: snapshots.size,
        };
      },
      validateConnector() {},
      async exportVolume(v, connector, mode) {
        return {
          protocol: 'test',
          data: {
            target: `${config.pool}/${v.id}`,
            host: connector.host,
            mode,
            auth: { method: 'CHAP', username: 'u', chapPassword: `chap-${v.id}` },
            portals: [{ address: '192.0.2.1', token: `tok-${v.id}` }],
          },
        };
      },
      async unexportVolume() {},
      async inventory() {
        return { volumes: new Map(volumes), snapshots: new Map(snapshots) };
      },
      async close() {},
    };
  },
};
