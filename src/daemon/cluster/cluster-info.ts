/**
 * The parts of the cluster that a daemon alone needs too, kept apart from cluster-metadata.ts
 * so that a daemon without --etcd never loads the etcd client.
 */
import * as os from 'node:os';
import type { ClusterInfoReply } from '../../protocol/messages';

/** persist's ttl: at most ten years, in seconds. */
export const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;

/** clusterInfo of a daemon without --etcd: just itself. */
export function standaloneInfo(
  instanceId: number,
  socket: string,
  rpcEndpoint: string | null = null,
): ClusterInfoReply {
  return {
    instanceId,
    clustered: false,
    registered: false,
    instances: [{ instanceId, hostname: os.hostname(), socket, rpcEndpoint, alive: true }],
  };
}
