/**
 * What the plugin advertises. The spec requires every instance of one plugin version to report
 * the same plugin capabilities whatever its mode, so these do not depend on the configuration.
 */
import type { ControllerCapabilityName, PluginCapability } from './proto.js';

export const PLUGIN_CAPABILITIES: readonly PluginCapability[] = [
  { service: { type: 'CONTROLLER_SERVICE' } },
  { service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } },
  { volume_expansion: { type: 'ONLINE' } },
  { volume_expansion: { type: 'OFFLINE' } },
];

/**
 * The Controller's capabilities. MODIFY_VOLUME is left out: ControllerModifyVolume answers, but
 * no mutable parameter exists yet, so a CO must not send any.
 */
export const CONTROLLER_CAPABILITIES: readonly ControllerCapabilityName[] = [
  'CREATE_DELETE_VOLUME',
  'PUBLISH_UNPUBLISH_VOLUME',
  'LIST_VOLUMES',
  'GET_CAPACITY',
  'CREATE_DELETE_SNAPSHOT',
  'LIST_SNAPSHOTS',
  'CLONE_VOLUME',
  'PUBLISH_READONLY',
  'EXPAND_VOLUME',
  'LIST_VOLUMES_PUBLISHED_NODES',
  'VOLUME_CONDITION',
  'GET_VOLUME',
  'SINGLE_NODE_MULTI_WRITER',
  'GET_SNAPSHOT',
];
