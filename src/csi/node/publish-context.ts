import { type ConnectionInfo, connectionInfoSchema } from '../../core/records.js';
import { invalidArgument } from '../../util/errors.js';

/**
 * Keys of the `publish_context` ControllerPublishVolume returns and NodeStageVolume reads: the
 * connection's protocol, and its data as a JSON string (publish_context is a string map).
 */
export const PUBLISH_CONTEXT_PROTOCOL = 'cairn.io/protocol';
export const PUBLISH_CONTEXT_DATA = 'cairn.io/data';

/** The publish_context that carries a connection to the node. */
export function encodePublishContext(info: ConnectionInfo): Record<string, string> {
  return { [PUBLISH_CONTEXT_PROTOCOL]: info.protocol, [PUBLISH_CONTEXT_DATA]: JSON.stringify(info.data) };
}

/** The connection a publish_context carries; INVALID_ARGUMENT naming the key when it is missing or bad. */
export function decodePublishContext(ctx: Record<string, string> | null | undefined): ConnectionInfo {
  const protocol = ctx?.[PUBLISH_CONTEXT_PROTOCOL];
  const data = ctx?.[PUBLISH_CONTEXT_DATA];
  if (!protocol || data === undefined) {
    throw invalidArgument(
      `publish_context must hold ${PUBLISH_CONTEXT_PROTOCOL} and ${PUBLISH_CONTEXT_DATA} (set by ControllerPublishVolume)`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    throw invalidArgument(`publish_context ${PUBLISH_CONTEXT_DATA} is not JSON`);
  }
  const info = connectionInfoSchema.safeParse({ protocol, data: parsed });
  if (!info.success) throw invalidArgument(`publish_context ${PUBLISH_CONTEXT_DATA} must be a JSON object`);
  return info.data;
}
