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

export type { ExportConfig } from './config.js';
export { exportConfigSchema } from './config.js';
export type { Exporter, ExportTarget } from './spi.js';
