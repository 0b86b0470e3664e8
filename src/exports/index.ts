import { hostname } from 'node:os';
import type { HostConnector } from '../core/records.js';
import { invalidArgument } from '../util/errors.js';
import type { ExportConfig } from './config.js';
import type { Exporter, ExporterContext } from './spi.js';

/**
 * Makes the exporter an `export` section asks for. Each protocol's module is imported only here,
 * when a backend that uses it is added.
 */
export async function createExporter(config: ExportConfig, ctx: ExporterContext): Promise<Exporter> {
  switch (config.protocol) {
    case 'iscsi':
      return config.helper === 'tgt'
        ? (await import('./tgt.js')).createTgtExporter(config, ctx)
        : (await import('./lio.js')).createLioExporter(config, ctx);
    case 'nvmeof':
      return (await import('./nvmet.js')).createNvmetExporter(config, ctx);
    case 'nbd':
      return (await import('./nbd.js')).createNbdExporter(config, ctx);
  }
}

/**
 * The connector check of a driver that composes an optional exporter: the exporter's own, or,
 * without one, "this host only" (a local attach).
 */
export function connectorCheck(
  exporter: Exporter | undefined,
  backend: string,
  driver: string,
): (connector: HostConnector) => void {
  const host = hostname();
  return (connector) => {
    if (exporter) {
      exporter.validateConnector(connector);
      return;
    }
    if (connector.host !== host) {
      throw invalidArgument(
        `backend ${backend} (${driver}) exports only to its own host "${host}"; the connector is for host "${connector.host}"`,
      );
    }
  };
}

export type { ExportConfig } from './config.js';
export { exportConfigSchema } from './config.js';
export type { Exporter, ExportTarget } from './spi.js';
