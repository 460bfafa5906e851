/**
 * The parts of a daemon's cluster metadata that its readers and writers share: the etcd
 * connection, the membership, the two directories (what is published, as the cache shows it)
 * and the local tables they tie to. Built once by ClusterMetadata; nothing else writes the
 * directories' own sets, which only their methods change.
 */
import { TrellisError } from '../../errors';
import type { EtcdConnection } from '../metadata/etcd-connection';
import type { Membership } from '../metadata/membership';
import type { ObjectTable } from '../object-table';
import type { Expirations } from './expirations';
import type { LeaseOf, NameDirectory } from './name-directory';
import type { ObjectDirectory } from './object-directory';

export interface ClusterContext {
  readonly connection: EtcdConnection;
  readonly membership: Membership;
  readonly objects: ObjectDirectory;
  readonly names: NameDirectory;
  readonly table: ObjectTable;
  readonly expirations: Expirations;
}

/** Errors: Unavailable, when this daemon cannot write to etcd right now (or has left). */
export function requireRegistered(cluster: ClusterContext, what: string): void {
  if (cluster.membership.registered) return;
  const { instanceId } = cluster.membership;
  throw new TrellisError(
    'Unavailable',
    `cannot ${what}: instance ${instanceId} is not registered with etcd at ${cluster.connection.describe()} right now ` +
      '(etcd is unreachable, or the daemon is registering again); local objects still work',
  );
}

/**
 * The lease a name's key goes on when `id` becomes its latest version: this daemon's for its own
 * objects, the holder's for another instance's (`current` when the cluster view lost it). The
 * name swaps ask synchronously, so the records of other instances' objects among `candidates`
 * (the ids that may become latest) are read first. Errors: Unavailable.
 */
export async function leaseOfObject(cluster: ClusterContext, candidates: Iterable<string>): Promise<LeaseOf> {
  const { objects, membership, table } = cluster;
  const remoteIds = [...new Set(candidates)].filter((id) => !table.sealedObjectOrUndefined(id));
  const leases = await objects.view(() => remoteIds.map((id) => objects.remote(id)?.lease));
  const read = new Map(remoteIds.map((id, i) => [id, leases[i]] as const));
  return (id, current) => {
    if (table.sealedObjectOrUndefined(id)) return membership.leaseId;
    // An id not among the candidates (the name changed meanwhile): the cache, if it has it.
    const lease = read.has(id) ? read.get(id) : objects.remoteRecords.cached(id)?.lease;
    return lease ?? current;
  };
}
