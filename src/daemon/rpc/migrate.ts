/**
 * migrate: copies an object that lives on another instance into this daemon, with the same
 * typename, fields, labels and member structure, and answers with the local copy's id.
 *
 *   1. getObject on the owner's RPC port: the metadata tree, and references to its blobs there.
 *   2. Local blobs for every blob not copied before, made by a session of the daemon's own.
 *   3. readBlobs, a few chunks in flight, each piece written straight into the new blobs.
 *   4. In one step, once every byte is in: seal the blobs and create the metadata, bottom up.
 *
 * Nothing half-made is left behind: until step 4 the new blobs are unsealed blobs of that
 * session, so any failure (the owner dies, stops answering, memory runs out) closes the session
 * and frees them. The daemon remembers original -> copy for every object of the tree while the
 * copy lives, so migrating it again, or an object that shares members with it, copies nothing
 * twice; concurrent migrations of one object share one copy.
 */
import { TrellisError } from '../../errors';
import { instanceOf } from '../../protocol/ids';
import type { BlobLocation, MigrateReply, ObjectMeta } from '../../protocol/messages';
import type { RpcSocket } from '../../protocol/rpc-socket';
import type { ClientSession } from '../session';
import type { PeerDirectory, PeerPool } from './peers';
import type { LocalStore } from './local-store';

export class Migrator {
  /** Original id -> the id of its copy here. */
  private readonly copies = new Map<string, string>();
  private readonly running = new Map<string, Promise<MigrateReply>>();

  constructor(
    private readonly store: LocalStore,
    private readonly directory: PeerDirectory,
    private readonly peers: PeerPool,
  ) {}

  /**
   * Errors: ObjectNotFound, NameNotFound, Unavailable (owner unknown, unreachable or gone
   * mid-copy), PermissionDenied (its token differs), OutOfMemory.
   */
  async migrate(ref: string): Promise<MigrateReply> {
    const { table, names, instanceId } = this.store;
    const id = names.resolve(ref);
    if (table.exists(id)) return { id, copiedBytes: 0 };
    const known = this.copyOf(id);
    if (known) return { id: known, copiedBytes: 0 };
    const owner = instanceOf(id);
    if (owner === instanceId) throw new TrellisError('ObjectNotFound', `object ${id} does not exist`);
    let running = this.running.get(id);
    if (!running) {
      running = this.copyFrom(this.directory.endpointOf(owner), id).finally(() => this.running.delete(id));
      this.running.set(id, running);
    }
    return running;
  }

  /** The live copy of `id` here, if there is one. */
  copyOf(id: string): string | undefined {
    const copy = this.copies.get(id);
    if (copy === undefined) return undefined;
    if (this.store.table.exists(copy)) return copy;
    this.copies.delete(id);
    return undefined;
  }

  private copyFrom(endpoint: string, id: string): Promise<MigrateReply> {
    return this.peers.with(endpoint, async (peer) => {
      const { meta, blobs } = await peer.request('getObject', { ref: id });
      try {
        return await this.copyTree(peer, meta, blobs);
      } finally {
        // The owner may free what it kept for us; a dead owner has already.
        peer.request('release', { ids: blobs.map((blob) => blob.id) }).catch(() => undefined);
      }
    });
  }

  private async copyTree(peer: RpcSocket, root: ObjectMeta, remoteBlobs: BlobLocation[]): Promise<MigrateReply> {
    const { table, pool } = this.store;
    const session = this.store.openSession(process.pid);
    try {
      const typenames = typenamesOf(root);
      const wanted = remoteBlobs.filter((blob) => this.copyOf(blob.id) === undefined);
      const local = new Map<string, BlobLocation>();
      for (const [typename, group] of groupBy(wanted, (blob) => typenames.get(blob.id)!)) {
        const sizes = group.map((blob) => blob.size);
        // As a local createBlobs does: wait for the start-up reservation, and reserve new segments
        // off the event loop with huge pages, not on the spot with 4 KiB ones.
        await pool.untilWarm();
        await pool.reserveAhead(sizes);
        const created = table.createBlobs(session, sizes, typename);
        group.forEach((blob, i) => local.set(blob.id, created[i]));
      }
      const targets = new Map<string, Uint8Array>();
      try {
        for (const [remote, location] of local) targets.set(remote, pool.memory.openWritable(location));
        await peer.readBlobs(wanted, (blobId, offset, bytes) => targets.get(blobId)!.set(bytes, offset));
      } finally {
        for (const target of targets.values()) pool.memory.closeWritable(target);
      }
      const copiedBytes = wanted.reduce((sum, blob) => sum + blob.size, 0);
      const blobIds = new Set(remoteBlobs.map((blob) => blob.id));
      return { id: this.createTree(session, root, peer.registration.instanceId, blobIds, local), copiedBytes };
    } finally {
      // Frees every blob not sealed into the tree: all of them when the copy failed.
      this.store.closeSession(session);
    }
  }

  /** Seals the copied blobs and creates the metadata, bottom up, in one synchronous step. */
  private createTree(
    session: ClientSession,
    root: ObjectMeta,
    ownerInstance: number,
    blobIds: Set<string>,
    local: Map<string, BlobLocation>,
  ): string {
    const { table } = this.store;
    const made = new Map<string, string>();
    const created: string[] = [];
    const copyOf = (node: ObjectMeta): string => {
      const done = made.get(node.id) ?? this.copyOf(node.id);
      if (done !== undefined) return done;
      let id: string;
      if (blobIds.has(node.id)) {
        id = local.get(node.id)!.id;
        table.seal(session, id, false);
      } else {
        const members: Record<string, string> = {};
        const remoteMembers: Record<string, ObjectMeta> = {};
        for (const [key, member] of Object.entries(node.members)) {
          // A global object's partitions elsewhere stay where they are; copy them when asked.
          if (member.instanceId !== ownerInstance && !blobIds.has(member.id)) {
            members[key] = member.id;
            if (!table.exists(member.id)) remoteMembers[key] = member;
          } else {
            members[key] = copyOf(member);
          }
        }
        const spec = { typename: node.typename, members, fields: node.fields, labels: node.labels };
        id = table.createMetadata(
          session,
          Object.keys(remoteMembers).length > 0 ? { ...spec, remoteMembers } : spec,
        ).id;
      }
      made.set(node.id, id);
      created.push(id);
      return id;
    };
    try {
      const id = copyOf(root);
      for (const [original, copy] of made) this.copies.set(original, copy);
      return id;
    } catch (error) {
      if (created.length > 0) table.delete(undefined, created, { deep: false, force: true });
      throw error;
    }
  }
}

/** Blob id -> its typename (a type stored as one blob, such as a ShareableList, keeps its own). */
function typenamesOf(root: ObjectMeta): Map<string, string> {
  const typenames = new Map<string, string>();
  const visit = (node: ObjectMeta): void => {
    typenames.set(node.id, node.typename);
    for (const member of Object.values(node.members)) visit(member);
  };
  visit(root);
  return typenames;
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return groups;
}
