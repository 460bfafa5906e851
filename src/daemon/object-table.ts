/**
 * The objects the daemon knows: blobs (bytes in shared memory) and metadata objects (a typename,
 * fields, and members that are other objects), their states and who holds them.
 *
 *   createBlobs    -> unsealed (owned by its creator, invisible to others)
 *   seal           -> sealed   (immutable, visible; the creator holds a reference)
 *   createMetadata -> sealed at once; its members must exist and be sealed
 *   delete         -> gone from view; a blob's bytes are freed when its last holder lets go
 *
 * Graph rules for delete (tested in test/daemon/delete-graph.test.ts):
 * - An object that a name or a live object still refers to is not deleted unless `force`;
 *   force drops its names and leaves referring objects with a missing member.
 * - `deep` also deletes members that nothing outside the deleted set refers to (no name, no
 *   other live parent), recursively. Shallow delete leaves members in place.
 * A client's references and unsealed blobs go when it disconnects (dropSession).
 *
 * A sealed blob is resident (its bytes in shared memory) or not: spilled to disk under memory
 * pressure, or persisted and not loaded since a restart. The table keeps resident blobs in
 * least-recently-used order and says which may go (evictable); residency.ts moves the bytes.
 */
import { TrellisError } from '../errors';
import type { BlobLocation, ObjectMeta, ObjectSummary, ParentRef } from '../protocol/messages';
import { IdGenerator } from '../protocol/ids';
import { globToRegExp } from './glob';
import type { KeptUntilExit } from './kept-until-exit';
import { ownBytes, ownString } from './own-bytes';
import { MAX_LABELS } from './validate';
import type { SegmentPool, Placement } from './segment-pool';
import type { ClientSession } from './session';

export const BLOB_TYPENAME = 'trellis::Blob';
export const VALUE_TYPENAME = 'trellis::Value';
/**
 * The most nodes an object's metadata tree may expand to. A member shared by several keys is
 * described once per key, so without a bound a chain of objects that each name the one below
 * twice would expand to 2^depth nodes on every get.
 */
export const MAX_TREE_NODES = 1 << 16;

export interface StoredObject {
  readonly id: string;
  readonly typename: string;
  readonly nbytes: number;
  readonly createdAt: number;
  sealed: boolean;
  /** Set once deleted: invisible, waiting for its last holder. */
  deleted: boolean;
  /** Whether this is a blob (bytes), rather than a metadata object. */
  readonly blob: boolean;
  /** Blobs only: where the bytes are in shared memory; undefined while not resident. */
  placement?: Placement;
  /** Blobs only: a copy of the bytes on disk (spilled, or persisted), if there is one. */
  backing?: BlobBacking;
  /** Never moved out of memory (stream chunks, which are read once and freed). */
  transient: boolean;
  /** Nodes its metadata tree expands to (itself and every member, once per key). */
  readonly treeNodes: number;
  readonly owner: number;
  /**
   * Client ids holding a reference (blobs); and, as -(slot + 1), read-index slots whose
   * tombstone some client still holds a view through (pinForIndex).
   */
  readonly holders: Set<number>;
  readonly members: Record<string, string>;
  readonly fields: Record<string, unknown>;
  /** Replaced whole by relabel, never changed in place (records and replies share it). */
  labels: Record<string, string>;
  /**
   * Lineage: what the object was made from (ParentRef, `parents` on the wire), set when it is
   * sealed. Not to be confused with `parents` below, the objects that hold this one as a member.
   */
  derivedFrom: readonly ParentRef[];
  /** Live objects that have this one as a member. */
  readonly parents: Set<string>;
  /** Names that publish this object. */
  readonly names: Set<string>;
  /** Older kept versions of names that point to this object, as `name@version`: they pin it too. */
  readonly keptVersions: Set<string>;
  /**
   * The four sets above for reading only: the set, or a shared empty one while it was never made.
   * Reading `holders` and the rest makes each set on first use; a delete that did so for every
   * object left Sets hanging off objects already promoted, which kept them through scavenges and
   * made the drains of put rings pay for it in GC.
   */
  readonly holdersIfAny: ReadonlySet<number>;
  /**
   * Takes a holder out of `holders`; false if it was not there. The set goes with its last
   * holder: an object got once through the daemon and released kept an empty Set and its table
   * (~150 B) for the rest of its life.
   */
  dropHolder(holder: number): boolean;
  /** Takes a parent out of `parents`; as dropHolder, the set goes with its last one. */
  dropParent(parent: string): void;
  readonly parentsIfAny: ReadonlySet<string>;
  readonly namesIfAny: ReadonlySet<string>;
  readonly keptVersionsIfAny: ReadonlySet<string>;
  /**
   * Global objects only: member key -> the metadata of a member that lives on another instance,
   * as its owner described it when the object was made (sealed objects do not change).
   */
  readonly remoteMembers?: Record<string, ObjectMeta>;
}

/** Where a sealed blob's bytes are kept on disk. */
export interface BlobBacking {
  readonly path: string;
  /** Persisted bytes are durable and checked when loaded; spilled ones are scratch. */
  readonly durable: boolean;
}

/** What the table tells the parts beside it. */
export interface TableListener {
  /** A forced delete took the object's names (and the kept versions pointing to it) with it. */
  namesDropped?(object: StoredObject): void;
  /** The object left the view (a blob's memory may still wait for its holders). */
  deleted?(object: StoredObject): void;
  /** A sealed object's labels changed (here, or by another daemon through its record). */
  relabeled?(object: StoredObject): void;
  /** A sealed object's bytes are in memory and stay where they are until it is deleted or moved. */
  readable?(object: StoredObject): void;
  /**
   * A blob's memory is about to be freed, its bytes safe on disk (spilled). The listener may pin
   * it (pinForIndex) instead: then it stays.
   */
  evicting?(blob: StoredObject): void;
  /** Whether a client holds a view of the blob without a reference (the read index): not evictable. */
  heldElsewhere?(blob: StoredObject): boolean;
  /**
   * Whether the blob was used since the last ask without a request (got from the read index and
   * let go): evictable() then moves it up, as a get through the daemon would have (touch).
   */
  usedElsewhere?(blob: StoredObject): boolean;
}

/** What an object is, apart from where its bytes are and who holds it: what is kept on disk. */
export interface ObjectDescription {
  id: string;
  typename: string;
  nbytes: number;
  createdAt: number;
  /** member key -> object id. */
  members: Record<string, string>;
  fields: Record<string, unknown>;
  labels: Record<string, string>;
  /** Lineage (see StoredObject.derivedFrom); absent in records written before lineage existed. */
  derivedFrom?: readonly ParentRef[];
  /** A global object's members on other instances, as described when it was made. */
  remoteMembers?: Record<string, ObjectMeta>;
}

/** An object kept from before a restart, to put back under its id (members first). */
export interface RestoredObject extends ObjectDescription {
  /** A blob: where its bytes are on disk (loaded on first use). */
  backing?: BlobBacking;
}

export interface MetadataSpec {
  typename: string;
  members: Record<string, string>;
  fields: Record<string, unknown>;
  labels: Record<string, string>;
  /** Lineage: what the object was made from. */
  derivedFrom?: readonly ParentRef[];
  /** Members on other instances (a global object), by key; their ids are in `members` too. */
  remoteMembers?: Record<string, ObjectMeta>;
}

/** What a seal may record on the blob besides sealing it. */
export interface SealExtras {
  labels?: Record<string, string>;
  derivedFrom?: readonly ParentRef[];
}

/** What listObjects keeps: a glob over the typename, and labels every object must carry. */
export interface ObjectFilter {
  pattern?: string;
  labels?: Record<string, string>;
}

const NO_MEMBERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** A blob with no members (blobs never have any): its tree is itself alone. */
function isBlobAlone(object: StoredObject): boolean {
  if (!object.blob) return false;
  if (object.members === NO_MEMBERS) return true;
  for (const key in object.members) if (Object.hasOwn(object.members, key)) return false;
  return true;
}
const NO_FIELDS: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;
const NO_LABELS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** Labels from a request, kept with the object: values of their own (own-bytes.ts); NO_LABELS if none. */
function ownLabels(labels: Record<string, string> | undefined): Record<string, string> {
  let any = false;
  for (const key in labels) {
    any = true;
    labels[key] = ownString(labels[key]);
  }
  return any ? labels! : NO_LABELS;
}

/**
 * Label changes merged into `labels` (null removes one), as a new map.
 * Errors: InvalidArgument (more than MAX_LABELS labels).
 */
export function mergeLabels(
  id: string,
  labels: Readonly<Record<string, string>>,
  changes: Record<string, string | null>,
): Record<string, string> {
  const merged: Record<string, string> = { ...labels };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete merged[key];
    else merged[key] = ownString(value);
  }
  const count = Object.keys(merged).length;
  if (count > MAX_LABELS) {
    throw new TrellisError(
      'InvalidArgument',
      `label: object ${id} would carry ${count} labels, more than the ${MAX_LABELS} allowed`,
    );
  }
  return count === 0 ? NO_LABELS : merged;
}
const NO_PARENTS: readonly ParentRef[] = Object.freeze([]);
const NO_NUMBERS: ReadonlySet<number> = new Set();
const NO_STRINGS: ReadonlySet<string> = new Set();

export class ObjectTable {
  private readonly objects = new Map<string, StoredObject>();
  /** Deleted blobs some client still holds. */
  private readonly deferred = new Map<string, StoredObject>();
  /** Sealed blobs whose bytes are in memory, least recently used first. */
  private readonly resident = new Map<string, StoredObject>();
  private nonResidentBytes = 0;
  private nonResidentCount = 0;

  constructor(
    private readonly pool: SegmentPool,
    private readonly ids: IdGenerator,
    private readonly instanceId: number,
    private readonly listener: TableListener = {},
    /** Frees a client's unsealed blocks, or keeps them while a thrown-off client may still write them. */
    private readonly keptUntilExit?: KeptUntilExit,
  ) {}

  get size(): number {
    return this.objects.size;
  }
  get deferredCount(): number {
    return this.deferred.size;
  }
  /** Sealed blobs whose bytes are on disk only, and their size. */
  get notResident(): { objects: number; bytes: number } {
    return { objects: this.nonResidentCount, bytes: this.nonResidentBytes };
  }

  /** Allocates every blob or none. Errors: InvalidArgument, OutOfMemory. */
  createBlobs(session: ClientSession, sizes: number[], typename = BLOB_TYPENAME): BlobLocation[] {
    if (session.closed) throw new TrellisError('ConnectionClosed', 'createBlobs: the client disconnected');
    const created: StoredObject[] = [];
    try {
      for (const size of sizes) {
        if (!Number.isSafeInteger(size) || size < 0) {
          throw new TrellisError('InvalidArgument', `blob size must be a non-negative integer, got ${size}`);
        }
        const placement = this.pool.allocate(size, `createBlob(${size})`);
        const blob = this.newObject(session, typename, size, placement, false, undefined, true);
        created.push(blob);
        this.objects.set(blob.id, blob);
        session.unsealed.add(blob.id);
      }
    } catch (error) {
      for (const blob of created) this.abort(session, blob.id);
      throw error;
    }
    return created.map(locate);
  }

  /**
   * Blobs holding `datas` (bytes that came in a request), made sealed at once, all or none: the
   * bytes are copied into their blocks before the objects exist, so they never pass through the
   * unsealed state (a session.unsealed entry made and dropped per put) nor need a BlobLocation.
   * `extras[i]`, if given, is recorded on blob i. Held by nobody, like a seal without hold.
   * Errors: ConnectionClosed, OutOfMemory.
   */
  createSealedBlobs(session: ClientSession, datas: readonly Uint8Array[], extras?: readonly SealExtras[]): string[] {
    if (session.closed) throw new TrellisError('ConnectionClosed', 'putBlobs: the client disconnected');
    const placements = new Array<Placement>(datas.length);
    let made = 0;
    try {
      for (; made < datas.length; made++) {
        const size = datas[made].byteLength;
        const placement = this.pool.allocate(size, `createBlob(${size})`);
        placements[made] = placement;
        if (size > 0) {
          const location = { id: 'new blob', size, segment: placement.segment, offset: placement.offset };
          this.pool.memory.write(location, 0, datas[made]);
        }
      }
    } catch (error) {
      // Every block allocated so far, the one whose write failed among them.
      for (let i = 0; i < datas.length && placements[i] !== undefined; i++) this.pool.free(placements[i]);
      throw error;
    }
    const ids = new Array<string>(datas.length);
    for (let i = 0; i < datas.length; i++) {
      const extra = extras?.[i];
      const labels = extra?.labels;
      const blob = new TableObject(
        this.ids.next(),
        BLOB_TYPENAME,
        datas[i].byteLength,
        true,
        true,
        placements[i],
        session.clientId,
        NO_MEMBERS,
        NO_FIELDS,
        ownLabels(labels),
        undefined,
        undefined,
        extra?.derivedFrom,
      );
      ids[i] = blob.id;
      this.objects.set(blob.id, blob);
      this.resident.set(blob.id, blob);
      this.listener.readable?.(blob);
    }
    return ids;
  }

  /** Errors: ObjectNotFound, AlreadySealed, PermissionDenied. */
  seal(session: ClientSession, id: string, hold = true, extras: SealExtras = {}): void {
    const blob = this.ownUnsealed(session, id, 'seal');
    if (extras.labels !== undefined && Object.keys(extras.labels).length > 0) blob.labels = ownLabels(extras.labels);
    if (extras.derivedFrom !== undefined && extras.derivedFrom.length > 0) blob.derivedFrom = extras.derivedFrom;
    blob.sealed = true;
    session.unsealed.delete(id);
    this.resident.set(id, blob);
    if (hold) this.hold(session, blob);
    this.listener.readable?.(blob);
  }

  /**
   * `handedOut` false: the client was never given the blob's location (a recycled stream chunk
   * not yet handed to its writer), so it cannot be writing it. Errors: ObjectNotFound,
   * AlreadySealed, PermissionDenied.
   */
  abort(session: ClientSession, id: string, handedOut = true): void {
    const blob = this.ownUnsealed(session, id, 'abort');
    session.unsealed.delete(id);
    this.objects.delete(id);
    if (handedOut) this.freeWritable(session, blob.placement!);
    else this.pool.free(blob.placement!);
  }

  /** abort() of each, all or none: every id is checked before any is freed. Errors: as abort(). */
  abortMany(session: ClientSession, ids: readonly string[]): void {
    const unique = new Set(ids);
    for (const id of unique) this.ownUnsealed(session, id, 'abort');
    for (const id of unique) this.abort(session, id);
  }

  /**
   * A put ring's object (daemon/put-rings.ts), under the id its client named: a sealed blob whose
   * bytes are already at `placement` (a block the pool gave the client's arena), or, with
   * `value`, a sealed trellis::Value holding those bytes inline (`placement` undefined). Held by
   * nobody, like a putBlobs blob. Errors: InvalidArgument (the id is in use).
   */
  adoptRingObject(
    session: ClientSession,
    id: string,
    size: number,
    placement: Placement | undefined,
    value?: Uint8Array,
    sealed = true,
  ): void {
    if (this.objects.has(id)) throw new TrellisError('InvalidArgument', `put ring: object ${id} exists already`);
    const isBlob = value === undefined;
    const object = new TableObject(
      id,
      isBlob ? BLOB_TYPENAME : VALUE_TYPENAME,
      isBlob ? size : 0,
      sealed,
      isBlob,
      placement,
      session.clientId,
      NO_MEMBERS,
      isBlob ? NO_FIELDS : { data: value },
      NO_LABELS,
      undefined,
    );
    this.objects.set(id, object);
    if (!sealed) {
      // A small createBlob: unsealed, this client's, as createBlobs makes it.
      session.unsealed.add(id);
      return;
    }
    if (isBlob) this.resident.set(id, object);
    this.listener.readable?.(object);
  }

  /**
   * A put ring's small TypedArray: the sealed blob `blobId` at `placement`, held by nobody, and
   * over it the metadata object `id` (a `trellis::Tensor<dtype>` with fields dtype and shape), as
   * createMetadata with the bytes inline makes them. Errors: InvalidArgument (an id is in use).
   */
  adoptRingTensor(
    session: ClientSession,
    blobId: string,
    id: string,
    size: number,
    placement: Placement,
    typename: string,
    fields: Record<string, unknown>,
  ): void {
    if (this.objects.has(id)) throw new TrellisError('InvalidArgument', `put ring: object ${id} exists already`);
    this.adoptRingObject(session, blobId, size, placement);
    const members = { data: blobId };
    const object = new TableObject(
      id,
      typename,
      size,
      true,
      false,
      undefined,
      session.clientId,
      members,
      fields,
      NO_LABELS,
      undefined,
    );
    object.treeNodes = 2;
    this.objects.set(id, object);
    this.objects.get(blobId)!.parents.add(id);
    this.listener.readable?.(object);
  }

  /**
   * Seals `seal` (this client's blobs, not kept as references) and creates a metadata object
   * over `members`. Everything is checked before anything changes.
   * Errors: ObjectNotFound, NotSealed, AlreadySealed, PermissionDenied, InvalidArgument.
   */
  createMetadata(session: ClientSession, spec: MetadataSpec, seal: string[] = []): StoredObject {
    const { nbytes, treeNodes } = this.checkMetadata(session, spec, seal);
    for (const id of new Set(seal)) this.seal(session, id, false);
    const object = this.newObject(session, spec.typename, nbytes, undefined, true, spec, false);
    object.treeNodes = treeNodes;
    this.objects.set(object.id, object);
    for (const [key, id] of Object.entries(spec.members))
      if (!spec.remoteMembers?.[key]) this.objects.get(id)!.parents.add(object.id);
    this.listener.readable?.(object);
    return object;
  }

  /**
   * Checks what createMetadata would do, changing nothing; returns the object's nbytes and the
   * nodes its tree expands to. Errors: as createMetadata.
   */
  checkMetadata(
    session: ClientSession,
    spec: MetadataSpec,
    seal: string[] = [],
  ): { nbytes: number; treeNodes: number } {
    const sealing = new Set(seal);
    for (const id of sealing) this.ownUnsealed(session, id, 'seal');
    let nbytes = 0;
    let treeNodes = 1;
    for (const [key, id] of Object.entries(spec.members)) {
      const remote = spec.remoteMembers?.[key];
      if (remote) {
        if (remote.id !== id)
          throw new TrellisError(
            'InvalidArgument',
            `member ${JSON.stringify(key)}: metadata of ${remote.id} given for ${id}`,
          );
        nbytes += remote.nbytes;
        treeNodes += countNodes(remote);
        continue;
      }
      const member = this.objects.get(id);
      if (!member)
        throw new TrellisError('ObjectNotFound', `member ${JSON.stringify(key)}: object ${id} does not exist`);
      if (!member.sealed && !sealing.has(id)) {
        throw new TrellisError('NotSealed', `member ${JSON.stringify(key)}: object ${id} is not sealed`);
      }
      nbytes += member.nbytes;
      treeNodes += member.treeNodes;
    }
    if (treeNodes > MAX_TREE_NODES) {
      throw new TrellisError(
        'InvalidArgument',
        `a ${spec.typename} whose tree expands to ${treeNodes} nodes (members shared by several keys count once per key) ` +
          `is over the limit of ${MAX_TREE_NODES}`,
      );
    }
    return { nbytes, treeNodes };
  }

  /**
   * Merges label changes into a sealed object (null removes a label) and returns its labels
   * now; the bytes and everything else stay as they are. `over`: the labels to merge into, when
   * another copy is the one that orders changes (a cluster record). Errors: ObjectNotFound,
   * NotSealed, InvalidArgument (more than MAX_LABELS labels).
   */
  relabel(id: string, changes: Record<string, string | null>, over?: Record<string, string>): Record<string, string> {
    const object = this.sealedObject(id);
    object.labels = mergeLabels(id, over ?? object.labels, changes);
    this.listener.relabeled?.(object);
    return object.labels;
  }

  /** A sealed object's metadata tree, wherever its bytes are. Errors: ObjectNotFound, NotSealed. */
  metaTree(id: string): ObjectMeta {
    return this.metaOf(this.sealedObject(id), new Map());
  }

  /**
   * A sealed object's metadata tree, and with `hold`, references to every blob in it (which
   * must be resident). Errors: ObjectNotFound, NotSealed.
   */
  describe(session: ClientSession | undefined, id: string): { meta: ObjectMeta; blobs: BlobLocation[] } {
    const object = this.sealedObject(id);
    if (isBlobAlone(object)) {
      // Every get of a put Buffer: the tree is the blob itself, with no Map to collect it in.
      const meta = this.metaOf(object);
      if (session) this.hold(session, object);
      return { meta, blobs: [locate(object)] };
    }
    const blobs = new Map<string, StoredObject>();
    const meta = this.metaOf(object, blobs);
    if (session) for (const blob of blobs.values()) this.hold(session, blob);
    return { meta, blobs: [...blobs.values()].map(locate) };
  }

  /**
   * Takes a reference to each blob for this client; all or nothing.
   * Errors: ObjectNotFound, NotSealed, TypeMismatch.
   */
  getBlobs(session: ClientSession, ids: string[]): BlobLocation[] {
    const blobs = this.sealedBlobs(ids);
    for (const blob of blobs) this.hold(session, blob);
    return blobs.map(locate);
  }

  /** Sealed blobs by id. Errors: ObjectNotFound, NotSealed, TypeMismatch (not a blob). */
  sealedBlobs(ids: string[]): StoredObject[] {
    const blobs = ids.map((id) => this.sealedObject(id));
    for (const blob of blobs) {
      if (!blob.blob)
        throw new TrellisError('TypeMismatch', `object ${blob.id} is a ${blob.typename}, not a blob: use getObject`);
    }
    return blobs;
  }

  /** The blobs in a sealed object's tree (itself, when it is one). Errors: ObjectNotFound, NotSealed. */
  blobsOf(id: string): StoredObject[] {
    const object = this.sealedObject(id);
    if (isBlobAlone(object)) return [object];
    const blobs = new Map<string, StoredObject>();
    this.metaOf(object, blobs);
    return [...blobs.values()];
  }

  /** Marks a sealed object's blobs as never to leave memory (stream chunks). */
  markTransient(id: string): void {
    for (const blob of this.blobsOf(id)) blob.transient = true;
  }

  /**
   * Resident sealed blobs that may leave memory now (nobody holds them), least recently used first.
   * One used through the read index since it was last looked at is moved up as it is met (gets
   * from the index are no requests, so nothing touched it): it comes again at the end, as the
   * most recently used, unless enough was found before it.
   */
  *evictable(): Iterable<StoredObject> {
    const listener = this.listener;
    for (const blob of this.resident.values()) {
      if (blob.holdersIfAny.size > 0 || blob.transient || listener.heldElsewhere?.(blob)) continue;
      if (listener.usedElsewhere?.(blob)) {
        // A Map's iteration meets an entry set again after its place once more, at the end.
        this.resident.delete(blob.id);
        this.resident.set(blob.id, blob);
        continue;
      }
      yield blob;
    }
  }

  /** Marks blobs as used now: they are the last to be evicted. */
  touch(blobs: Iterable<StoredObject>): void {
    for (const blob of blobs) {
      if (!this.resident.delete(blob.id)) continue;
      this.resident.set(blob.id, blob);
    }
  }

  /**
   * Frees a sealed blob's memory once its bytes are safe on disk (`backing`); false when a read
   * index view of it turned up as it was withdrawn (it stays, resident and pinned).
   */
  evict(blob: StoredObject, backing: BlobBacking): boolean {
    if (!blob.placement || blob.holdersIfAny.size > 0 || blob.deleted) {
      throw new TrellisError(
        'InvalidArgument',
        `blob ${blob.id} cannot leave memory now: it is held, deleted or not resident`,
      );
    }
    this.listener.evicting?.(blob);
    if (blob.holdersIfAny.size > 0) return false;
    this.resident.delete(blob.id);
    this.pool.free(blob.placement);
    blob.placement = undefined;
    blob.backing = backing;
    this.nonResidentBytes += blob.nbytes;
    this.nonResidentCount++;
    return true;
  }

  /**
   * Keeps a blob's memory for a read-index tombstone (read-index.ts): a client holds a view of
   * the bytes through `slot`. As a reference does: no free, no spill, no recycling until unpinned.
   */
  pinForIndex(blob: StoredObject, slot: number): void {
    blob.holders.add(-(slot + 1));
  }

  /** The tombstone's holds are gone: a deleted blob with no other holder is freed now. */
  unpinForIndex(blob: StoredObject, slot: number): void {
    if (!blob.dropHolder(-(slot + 1))) return;
    if (blob.deleted && blob.holdersIfAny.size === 0) this.discard(blob);
  }

  /** A blob's bytes are back in memory, at `placement`. */
  reinstate(blob: StoredObject, placement: Placement): void {
    blob.placement = placement;
    this.resident.set(blob.id, blob);
    this.nonResidentBytes -= blob.nbytes;
    this.nonResidentCount--;
    this.listener.readable?.(blob);
  }

  /**
   * Puts back objects kept from before a restart under their ids, sealed and held by nobody;
   * members come before the objects that hold them. Blobs come back not resident (loaded on
   * first use). Errors: InvalidArgument (an id in use, a missing member).
   */
  restore(objects: readonly RestoredObject[]): void {
    for (const restored of objects) {
      if (this.objects.has(restored.id))
        throw new TrellisError('InvalidArgument', `cannot restore ${restored.id}: the id is in use`);
      for (const [key, id] of Object.entries(restored.members)) {
        if (!restored.remoteMembers?.[key] && !this.objects.has(id)) {
          throw new TrellisError(
            'InvalidArgument',
            `cannot restore ${restored.id}: member ${JSON.stringify(key)} (${id}) is missing`,
          );
        }
      }
      const object = new TableObject(
        restored.id,
        ownString(restored.typename),
        restored.nbytes,
        true,
        restored.backing !== undefined,
        undefined,
        0,
        this.ownMembers(restored.members),
        ownBytes(restored.fields),
        ownLabels(restored.labels),
        restored.remoteMembers && ownBytes(restored.remoteMembers),
        restored.createdAt,
      );
      if (restored.derivedFrom !== undefined && restored.derivedFrom.length > 0)
        object.derivedFrom = restored.derivedFrom;
      object.backing = restored.backing;
      object.treeNodes = 1;
      for (const [key, id] of Object.entries(restored.members)) {
        const remote = restored.remoteMembers?.[key];
        object.treeNodes += remote ? countNodes(remote) : this.objects.get(id)!.treeNodes;
      }
      this.objects.set(object.id, object);
      this.ids.advancePast(object.id);
      if (object.blob) {
        this.nonResidentBytes += object.nbytes;
        this.nonResidentCount++;
      }
      for (const [key, id] of Object.entries(restored.members))
        if (!restored.remoteMembers?.[key]) this.objects.get(id)!.parents.add(object.id);
    }
  }

  /**
   * Where the bytes of a blob this client may touch are: for 'read', a blob it holds (even one
   * deleted since, whose memory waits for it); for 'write', its own unsealed blob.
   * Errors: ObjectNotFound, PermissionDenied, AlreadySealed, TypeMismatch.
   */
  locate(session: ClientSession, id: string, access: 'read' | 'write'): BlobLocation {
    if (access === 'write') return locate(this.ownUnsealed(session, id, 'write'));
    const blob = session.held.has(id) ? (this.objects.get(id) ?? this.deferred.get(id)) : undefined;
    if (!blob) {
      const known = this.objects.get(id);
      if (!known?.sealed) throw new TrellisError('ObjectNotFound', `cannot read ${id}: no such blob`);
      throw new TrellisError('PermissionDenied', `cannot read ${id}: take it with getBlobs or getObject first`);
    }
    if (!blob.blob) throw new TrellisError('TypeMismatch', `object ${id} is a ${blob.typename}, not a blob`);
    return locate(blob);
  }

  /** Drops this client's references; ids it does not hold are ignored. */
  release(session: ClientSession, ids: string[]): void {
    for (const id of ids) {
      const object = this.objects.get(id) ?? this.deferred.get(id);
      if (object) this.unhold(session, object);
    }
  }

  /**
   * Deletes a stream chunk that is a single blob and gives its memory to `writer` as a new
   * unsealed blob of the same size, instead of freeing it: the writer's next chunk then goes into
   * pages it has already touched (a fresh page costs a fault, and far more on a VM with shadow
   * paging). Only when the free would happen now: a chunk someone other than `reader` still
   * holds, or one a name, a version or a parent pins, is left alone (undefined), and the caller
   * deletes it the usual way, so nothing anyone can still read is ever written again.
   */
  recycle(reader: ClientSession | undefined, id: string, writer: ClientSession): BlobLocation | undefined {
    const chunk = this.objects.get(id);
    if (writer.closed || !chunk?.sealed || !chunk.blob || !chunk.placement || chunk.backing) return undefined;
    if (chunk.namesIfAny.size > 0 || chunk.keptVersionsIfAny.size > 0 || chunk.parentsIfAny.size > 0) return undefined;
    for (const holder of chunk.holdersIfAny) if (holder !== reader?.clientId) return undefined;
    if (this.listener.heldElsewhere?.(chunk)) return undefined;
    if (reader) this.unhold(reader, chunk);
    this.unlink(chunk, true);
    this.resident.delete(chunk.id);
    if (chunk.holdersIfAny.size > 0) {
      // A read-index view turned up as it was withdrawn: freed when that lets go, never reused.
      this.deferred.set(chunk.id, chunk);
      return undefined;
    }
    const blob = this.newObject(writer, BLOB_TYPENAME, chunk.nbytes, chunk.placement, false, undefined, true);
    this.objects.set(blob.id, blob);
    writer.unsealed.add(blob.id);
    return locate(blob);
  }

  /**
   * Deletes objects by the graph rules above; all ids are checked before anything changes.
   * Returns the ids removed, members included. Errors: ObjectNotFound, NotSealed, Conflict.
   */
  delete(session: ClientSession | undefined, ids: string[], options: { deep: boolean; force: boolean }): string[] {
    const doomed = this.planDelete(ids, options);
    for (const id of doomed) this.remove(session, this.objects.get(id)!, options.force);
    return doomed;
  }

  /**
   * The ids `delete` would remove, changing nothing (the cluster unpublishes them first).
   * Errors: as delete.
   */
  planDelete(ids: string[], options: { deep: boolean; force: boolean }): string[] {
    const roots = [...new Set(ids)].map((id) => this.sealedObject(id));
    const doomed = new Set(roots.map((object) => object.id));
    if (!options.force) for (const root of roots) this.refuseIfReferenced(root, doomed);
    if (options.deep) this.addUnsharedMembers(roots, doomed);
    return [...doomed];
  }

  exists(id: string): boolean {
    return this.objects.get(id)?.sealed === true;
  }

  sealedObjectOrUndefined(id: string): StoredObject | undefined {
    const object = this.objects.get(id);
    return object?.sealed ? object : undefined;
  }

  /** A live, sealed object. Errors: ObjectNotFound, NotSealed. */
  sealedObject(id: string): StoredObject {
    const object = this.objects.get(id);
    if (!object) throw new TrellisError('ObjectNotFound', `object ${id} does not exist`);
    if (!object.sealed) throw new TrellisError('NotSealed', `object ${id} is not sealed yet`);
    return object;
  }

  /** Sealed objects, newest first, that pass the filter. */
  list(filter: ObjectFilter, limit: number): ObjectSummary[] {
    const matches = objectMatcher(filter);
    const found: ObjectSummary[] = [];
    for (const object of this.objects.values()) {
      if (!object.sealed || !matches(object)) continue;
      found.push({
        id: object.id,
        typename: object.typename,
        nbytes: object.nbytes,
        sealed: true,
        createdAt: object.createdAt,
      });
    }
    found.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    return found.slice(0, limit);
  }

  /**
   * Reclaims everything a client had: its unsealed blobs (kept until its process exits when the
   * daemon threw it off: kept-until-exit.ts) and its references.
   */
  dropSession(session: ClientSession): void {
    for (const id of session.unsealed) {
      const blob = this.objects.get(id);
      if (!blob) continue;
      this.objects.delete(id);
      this.freeWritable(session, blob.placement!);
    }
    session.unsealed.clear();
    this.release(session, [...session.held]);
  }

  /** Frees a block `session` was given to write, unless it may still write it (kept-until-exit.ts). */
  private freeWritable(session: ClientSession, placement: Placement): void {
    if (this.keptUntilExit) this.keptUntilExit.release(session, placement);
    else this.pool.free(placement);
  }

  private newObject(
    session: ClientSession,
    typename: string,
    nbytes: number,
    placement: Placement | undefined,
    sealed: boolean,
    spec: MetadataSpec | undefined,
    blob: boolean,
  ): TableObject {
    // Kept as long as the object: bytes and strings of their own, not views of the request's
    // socket chunk or slices of its strings (own-bytes.ts); empty maps shared.
    return new TableObject(
      this.ids.next(),
      ownString(typename),
      nbytes,
      sealed,
      blob,
      placement,
      session.clientId,
      spec === undefined ? NO_MEMBERS : this.ownMembers(spec.members),
      spec === undefined ? NO_FIELDS : ownBytes(spec.fields),
      spec === undefined ? NO_LABELS : ownLabels(spec.labels),
      spec?.remoteMembers && ownBytes(spec.remoteMembers),
      undefined,
      spec?.derivedFrom,
    );
  }

  /** A new object's members, naming each local member by the table's own id string; NO_MEMBERS if none. */
  private ownMembers(members: Record<string, string>): Record<string, string> {
    let any = false;
    for (const key in members) {
      any = true;
      const own = this.objects.get(members[key])?.id;
      if (own !== undefined) members[key] = own;
    }
    return any ? members : NO_MEMBERS;
  }

  /** The object's meta tree; its blobs (itself and its members') are collected in `blobs`. */
  private metaOf(object: StoredObject, blobs?: Map<string, StoredObject>): ObjectMeta {
    if (object.blob) blobs?.set(object.id, object);
    const members: Record<string, ObjectMeta> = {};
    for (const [key, id] of Object.entries(object.members)) {
      const remote = object.remoteMembers?.[key];
      if (remote) {
        members[key] = remote;
        continue;
      }
      const member = this.objects.get(id);
      if (!member)
        throw new TrellisError(
          'ObjectNotFound',
          `object ${object.id}: member ${JSON.stringify(key)} (${id}) was deleted`,
        );
      members[key] = this.metaOf(member, blobs);
    }
    const meta: ObjectMeta = {
      id: object.id,
      typename: object.typename,
      nbytes: object.nbytes,
      instanceId: this.instanceId,
      createdAt: object.createdAt,
      labels: object.labels,
      fields: object.fields,
      members,
    };
    if (object.derivedFrom.length > 0) meta.parents = [...object.derivedFrom];
    return meta;
  }

  private refuseIfReferenced(object: StoredObject, doomed: Set<string>): void {
    const name = object.namesIfAny.values().next();
    if (!name.done) {
      throw new TrellisError(
        'Conflict',
        `object ${object.id} is published as ${JSON.stringify(name.value)}: drop the name first, or delete with force`,
      );
    }
    const kept = object.keptVersionsIfAny.values().next();
    if (!kept.done) {
      const at = kept.value.lastIndexOf('@');
      const [keptName, version] = [kept.value.slice(0, at), kept.value.slice(at + 1)];
      throw new TrellisError(
        'Conflict',
        `object ${object.id} is version ${version} of name ${JSON.stringify(keptName)}: ` +
          'drop that version first, or delete with force',
      );
    }
    for (const parent of object.parentsIfAny) {
      if (!doomed.has(parent)) {
        throw new TrellisError(
          'Conflict',
          `object ${object.id} is a member of ${parent}: delete that first, or delete with force`,
        );
      }
    }
  }

  /** Adds, recursively, members whose every parent is being deleted and that no name publishes. */
  private addUnsharedMembers(roots: StoredObject[], doomed: Set<string>): void {
    const pending = roots.flatMap((root) => Object.values(root.members));
    while (pending.length > 0) {
      const member = this.objects.get(pending.pop()!);
      if (!member || doomed.has(member.id) || member.namesIfAny.size > 0 || member.keptVersionsIfAny.size > 0) continue;
      if (![...member.parentsIfAny].every((parent) => doomed.has(parent))) continue;
      doomed.add(member.id);
      pending.push(...Object.values(member.members));
    }
  }

  private remove(session: ClientSession | undefined, object: StoredObject, force: boolean): void {
    this.unlink(object, force);
    if (!object.blob) return;
    this.resident.delete(object.id);
    if (!object.placement) {
      this.nonResidentBytes -= object.nbytes;
      this.nonResidentCount--;
      return;
    }
    this.deferred.set(object.id, object);
    if (session) this.unhold(session, object);
    if (object.holdersIfAny.size === 0) this.discard(object);
  }

  /** Takes the object out of the table and its parents' member lists; its memory is the caller's. */
  private unlink(object: StoredObject, force: boolean): void {
    this.objects.delete(object.id);
    object.deleted = true;
    if (force) this.listener.namesDropped?.(object);
    for (const id of Object.values(object.members)) this.objects.get(id)?.dropParent(object.id);
    this.listener.deleted?.(object);
  }

  private hold(session: ClientSession, object: StoredObject): void {
    if (session.closed) return; // a get that finished after its client left: nobody would release it
    object.holders.add(session.clientId);
    session.held.add(object.id);
  }

  private unhold(session: ClientSession, object: StoredObject): void {
    if (!session.held.delete(object.id)) return;
    object.dropHolder(session.clientId);
    if (object.deleted && object.holdersIfAny.size === 0) this.discard(object);
  }

  /** The physical free of a deleted blob, once nobody holds it. */
  private discard(object: StoredObject): void {
    if (!this.deferred.delete(object.id)) return;
    this.pool.free(object.placement!);
  }

  private ownUnsealed(session: ClientSession, id: string, verb: string): StoredObject {
    const blob = this.objects.get(id);
    if (!blob) throw new TrellisError('ObjectNotFound', `cannot ${verb} ${id}: no such blob`);
    if (blob.sealed) throw new TrellisError('AlreadySealed', `cannot ${verb} ${id}: it is already sealed`);
    if (blob.owner !== session.clientId) {
      throw new TrellisError('PermissionDenied', `cannot ${verb} ${id}: another client created it`);
    }
    return blob;
  }
}

/**
 * A StoredObject whose sets are made on first use: most objects never get a holder (metadata),
 * a parent or a name, and three empty Sets per put were a measurable share of its cost in GC.
 */
class TableObject implements StoredObject {
  deleted = false;
  treeNodes = 1;
  derivedFrom: readonly ParentRef[];
  backing?: BlobBacking;
  transient = false;
  private holderSet?: Set<number>;
  private parentSet?: Set<string>;
  private nameSet?: Set<string>;
  private keptSet?: Set<string>;

  constructor(
    readonly id: string,
    readonly typename: string,
    readonly nbytes: number,
    public sealed: boolean,
    readonly blob: boolean,
    public placement: Placement | undefined,
    readonly owner: number,
    readonly members: Record<string, string>,
    readonly fields: Record<string, unknown>,
    public labels: Record<string, string>,
    readonly remoteMembers: Record<string, ObjectMeta> | undefined,
    readonly createdAt = Date.now(),
    derivedFrom?: readonly ParentRef[],
  ) {
    this.derivedFrom = derivedFrom !== undefined && derivedFrom.length > 0 ? derivedFrom : NO_PARENTS;
  }

  get holders(): Set<number> {
    return (this.holderSet ??= new Set());
  }
  get parents(): Set<string> {
    return (this.parentSet ??= new Set());
  }
  get names(): Set<string> {
    return (this.nameSet ??= new Set());
  }
  get keptVersions(): Set<string> {
    return (this.keptSet ??= new Set());
  }
  get holdersIfAny(): ReadonlySet<number> {
    return this.holderSet ?? NO_NUMBERS;
  }
  dropHolder(holder: number): boolean {
    const set = this.holderSet;
    if (set === undefined || !set.delete(holder)) return false;
    if (set.size === 0) this.holderSet = undefined;
    return true;
  }
  dropParent(parent: string): void {
    const set = this.parentSet;
    if (set !== undefined && set.delete(parent) && set.size === 0) this.parentSet = undefined;
  }
  get parentsIfAny(): ReadonlySet<string> {
    return this.parentSet ?? NO_STRINGS;
  }
  get namesIfAny(): ReadonlySet<string> {
    return this.nameSet ?? NO_STRINGS;
  }
  get keptVersionsIfAny(): ReadonlySet<string> {
    return this.keptSet ?? NO_STRINGS;
  }
}

/** Nodes of a metadata tree as described (a remote member's, as its owner sent it). */
function countNodes(meta: ObjectMeta): number {
  let nodes = 1;
  for (const member of Object.values(meta.members)) nodes += countNodes(member);
  return nodes;
}

/** A test for listObjects' filter, over anything with a typename and labels. */
export function objectMatcher(
  filter: ObjectFilter,
): (object: { typename: string; labels: Record<string, string> }) => boolean {
  const typename = filter.pattern ? globToRegExp(filter.pattern) : undefined;
  const wanted = Object.entries(filter.labels ?? {});
  return (object) =>
    (!typename || typename.test(object.typename)) && wanted.every(([key, value]) => object.labels[key] === value);
}

/** Where a resident blob's bytes are. Callers make it resident first (residency.ts). */
function locate(object: StoredObject): BlobLocation {
  if (!object.placement) throw new TrellisError('InvalidArgument', `blob ${object.id} is not in memory`);
  return { id: object.id, size: object.nbytes, segment: object.placement!.segment, offset: object.placement!.offset };
}
