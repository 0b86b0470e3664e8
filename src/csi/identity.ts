/** The Identity service: who the plugin is, what it offers, and whether it is healthy. */
import { readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { PLUGIN_CAPABILITIES } from './capabilities.js';
import { grpcError } from './errors.js';
import type {
  GetPluginCapabilitiesResponse,
  GetPluginInfoResponse,
  ProbeResponse,
  ServiceHandlers,
} from './proto.js';
import { unary } from './rpc.js';

/** What the Identity service needs. */
export interface IdentityDeps {
  /** GetPluginInfo's name, e.g. `csi.cairn.io`. */
  driverName: string;
  /** GetPluginInfo's vendor_version (default: this package's version). */
  version?: string;
  /** GetPluginInfo's manifest. */
  manifest: Record<string, string>;
  /** Checks the plugin's dependencies; throws with the reason when one is unhealthy. */
  probe(): Promise<void>;
  logger: Logger;
}

let packageVersion: string | undefined;

/** This package's version, from its package.json (dist/src/csi → the package root). */
export function cairnVersion(): string {
  if (packageVersion === undefined) {
    let version = '0.0.0-unknown';
    for (const rel of ['../../../package.json', '../../package.json']) {
      try {
        const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (pkg.name === 'cairn' && pkg.version) {
          version = pkg.version;
          break;
        }
      } catch {
        // try the next location
      }
    }
    packageVersion = version;
  }
  return packageVersion;
}

export function createIdentityService(deps: IdentityDeps): ServiceHandlers {
  const log = deps.logger;
  return {
    GetPluginInfo: unary<unknown, GetPluginInfoResponse>(
      'GetPluginInfo',
      log,
      async () => ({
        name: deps.driverName,
        vendor_version: deps.version ?? cairnVersion(),
        manifest: deps.manifest,
      }),
      { quiet: true },
    ),

    GetPluginCapabilities: unary<unknown, GetPluginCapabilitiesResponse>(
      'GetPluginCapabilities',
      log,
      async () => ({
        capabilities: [...PLUGIN_CAPABILITIES],
      }),
      { quiet: true },
    ),

    // The plugin serves only once it has started (state store open, backends added), so it is
    // either ready or unhealthy: FAILED_PRECONDITION with the reason, as the spec asks.
    Probe: unary<unknown, ProbeResponse>(
      'Probe',
      log,
      async () => {
        try {
          await deps.probe();
        } catch (err) {
          throw grpcError(status.FAILED_PRECONDITION, `plugin not healthy: ${errorMessage(err)}`);
        }
        return { ready: { value: true } };
      },
      { quiet: true },
    ),
  };
}
