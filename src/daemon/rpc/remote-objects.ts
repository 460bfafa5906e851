/**
 * What the daemon does with objects that live on other instances: copy one here (migrate) and
 * make a global object whose members are spread over several instances (putGlobal). Dispatch
 * reaches both through `state.remote`; the peers and the directory are shared by the two.
 */
import { TrellisError } from '../../errors';
import { instanceOf } from '../../protocol/ids';
import type { MigrateReply, ObjectMeta } from '../../protocol/messages';
import type { RpcSocketOptions } from '../../protocol/rpc-socket';
import type { MetadataSpec } from '../object-table';
import type { ClientSession } from '../session';
import { Migrator } from './migrate';
import { PeerDirectory, PeerPool, type ClusterDirectory } from './peers';
import type { LocalStore } from './local-store';

export interface RemoteObjectsOptions extends RpcSocketOptions {
  /** instance id -> host:port, for daemons without a cluster view (`--rpc-peer`). */
  staticPeers?: ReadonlyMap<number, string>;
  /** The cluster view, asked before the static peers (a daemon in a cluster). */
  cluster?: ClusterDirectory;
}

export class RemoteObjects {
  readonly directory: PeerDirectory;
  private readonly peers: PeerPool;
  private readonly migrator: Migrator;

  constructor(
    private readonly store: LocalStore,
    options: RemoteObjectsOptions = {},
  ) {
    const { staticPeers, cluster, ...socketOptions } = options;
    this.directory = new PeerDirectory(staticPeers, cluster);
    this.peers = new PeerPool(socketOptions);
    this.migrator = new Migrator(store, this.directory, this.peers);
  }

  /** See migrate.ts. Errors: ObjectNotFound, NameNotFound, Unavailable, PermissionDenied, OutOfMemory. */
  migrate(ref: string): Promise<MigrateReply> {
    return this.migrator.migrate(ref);
  }

  /**
   * A metadata object over members that may live anywhere in the cluster. Local members are held
   * as any member is; for each remote one the owner's description is kept, so reading the object
   * lists every partition without asking the owners, and `migrate` fetches the ones wanted.
   * Errors: ObjectNotFound, Unavailable, PermissionDenied, InvalidArgument.
   */
  async putGlobal(session: ClientSession, spec: MetadataSpec): Promise<string> {
    const { table, instanceId } = this.store;
    const remote = Object.entries(spec.members).filter(([, id]) => !table.exists(id));
    for (const [key, id] of remote) {
      if (instanceOf(id) === instanceId)
        throw new TrellisError('ObjectNotFound', `member ${JSON.stringify(key)}: object ${id} does not exist`);
    }
    const metas = await Promise.all(remote.map(([, id]) => this.describeRemote(id)));
    const remoteMembers: Record<string, ObjectMeta> = {};
    remote.forEach(([key], i) => (remoteMembers[key] = metas[i]));
    return table.createMetadata(session, { ...spec, remoteMembers }).id;
  }

  close(): void {
    this.peers.close();
  }

  private describeRemote(id: string): Promise<ObjectMeta> {
    const endpoint = this.directory.endpointOf(instanceOf(id));
    return this.peers.with(endpoint, async (peer) => (await peer.request('getMeta', { ref: id })).meta);
  }
}
