/**
 * The cluster, from the client: what instances there are, and making objects visible to all of
 * them. Reads are answered by the daemon from its cached view of etcd; persist goes to etcd.
 */
import { TrellisError } from '../errors';
import type { ClusterInfoReply } from '../protocol/messages';
import type { Channel } from './channel';
import { checkId } from './names';

export type ClusterInfo = ClusterInfoReply;

export interface PersistOptions {
  /** Seconds until the object expires: it is then deleted everywhere, names and all. */
  ttl?: number;
}

export class Cluster {
  constructor(private readonly channel: Channel) {}

  info(): Promise<ClusterInfo> {
    return this.channel.request('clusterInfo', {});
  }

  /** Errors: ObjectNotFound, NotSealed, InvalidArgument, RemoteObject, Unavailable. */
  async persist(id: string, options: PersistOptions = {}): Promise<void> {
    const { ttl } = options;
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0)) {
      throw new TrellisError(
        'InvalidArgument',
        `persist: ttl must be a positive number of seconds, got ${String(ttl)}`,
      );
    }
    await this.channel.request('persist', ttl === undefined ? { id: checkId(id) } : { id: checkId(id), ttl });
  }
}
