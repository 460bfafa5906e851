/**
 * The objects the daemon knows, their states and who holds them.
 *
 *   createBlob -> unsealed (owned by its creator, invisible to others)
 *   seal       -> sealed   (immutable, visible; the creator holds a reference)
 *   delete     -> gone from view; the bytes are freed when the last holder releases
 *
 * A client's references and unsealed blobs go when it disconnects (dropSession), so a killed
 * client leaks nothing, and nothing is freed while another client still reads it.
 */
import { TrellisError } from '../errors';
import type { BlobLocation, ObjectSummary } from '../protocol/messages';
import { IdGenerator } from '../protocol/ids';
import { globToRegExp } from './glob';
import type { SegmentPool, Placement } from './segment-pool';
import type { ClientSession } from './session';

export const BLOB_TYPENAME = 'trellis::Blob';

export interface StoredObject {
  readonly id: string;
  readonly typename: string;
  readonly nbytes: number;
  readonly createdAt: number;
  sealed: boolean;
  /** Set once deleted: invisible, waiting for its last holder. */
  deleted: boolean;
  readonly placement: Placement;
  readonly owner: number;
  /** Client ids holding a reference. */
  readonly holders: Set<number>;
}

export class ObjectTable {
  private readonly objects = new Map<string, StoredObject>();
  /** Deleted objects some client still holds. */
  private readonly deferred = new Map<string, StoredObject>();

  constructor(
    private readonly pool: SegmentPool,
    private readonly ids: IdGenerator,
  ) {}

  get size(): number {
    return this.objects.size;
  }
  get deferredCount(): number {
    return this.deferred.size;
  }

  /** Errors: InvalidArgument, OutOfMemory. */
  createBlob(session: ClientSession, size: number, typename = BLOB_TYPENAME): BlobLocation {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new TrellisError('InvalidArgument', `blob size must be a non-negative integer, got ${size}`);
    }
    const placement = this.pool.allocate(size, `createBlob(${size})`);
    const blob: StoredObject = {
      id: this.ids.next(),
      typename,
      nbytes: size,
      createdAt: Date.now(),
      sealed: false,
      deleted: false,
      placement,
      owner: session.clientId,
      holders: new Set(),
    };
    this.objects.set(blob.id, blob);
    session.unsealed.add(blob.id);
    return locate(blob);
  }

  /** Errors: ObjectNotFound, AlreadySealed, PermissionDenied. */
  seal(session: ClientSession, id: string): void {
    const blob = this.ownUnsealed(session, id, 'seal');
    blob.sealed = true;
    session.unsealed.delete(id);
    this.hold(session, blob);
  }

  /** Errors: ObjectNotFound, AlreadySealed, PermissionDenied. */
  abort(session: ClientSession, id: string): void {
    const blob = this.ownUnsealed(session, id, 'abort');
    session.unsealed.delete(id);
    this.objects.delete(id);
    this.pool.free(blob.placement);
  }

  /**
   * Takes a reference to each blob for this client; all or nothing.
   * Errors: ObjectNotFound, NotSealed.
   */
  getBlobs(session: ClientSession, ids: string[]): BlobLocation[] {
    const blobs = ids.map((id) => this.sealedObject(id));
    for (const blob of blobs) this.hold(session, blob);
    return blobs.map(locate);
  }

  /** Drops this client's references; ids it does not hold are ignored. */
  release(session: ClientSession, ids: string[]): void {
    for (const id of ids) {
      const object = this.objects.get(id) ?? this.deferred.get(id);
      if (object) this.unhold(session, object);
    }
  }

  /**
   * Removes objects from view; bytes that another client holds are freed when it lets go.
   * All ids are checked before anything changes. Errors: ObjectNotFound, NotSealed.
   */
  delete(session: ClientSession, ids: string[]): string[] {
    const unique = [...new Set(ids)];
    const doomed = unique.map((id) => this.sealedObject(id));
    for (const object of doomed) {
      this.objects.delete(object.id);
      object.deleted = true;
      this.deferred.set(object.id, object);
      this.unhold(session, object);
      if (object.holders.size === 0) this.discard(object);
    }
    return unique;
  }

  exists(id: string): boolean {
    return this.objects.get(id)?.sealed === true;
  }

  /** Sealed objects, newest first; `pattern` is a glob over the typename. */
  list(pattern: string | undefined, limit: number): ObjectSummary[] {
    const matcher = pattern ? globToRegExp(pattern) : undefined;
    const found: ObjectSummary[] = [];
    for (const object of this.objects.values()) {
      if (!object.sealed || (matcher && !matcher.test(object.typename))) continue;
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

  /** Reclaims everything a client had: its unsealed blobs and its references. */
  dropSession(session: ClientSession): void {
    for (const id of session.unsealed) {
      const blob = this.objects.get(id);
      if (!blob) continue;
      this.objects.delete(id);
      this.pool.free(blob.placement);
    }
    session.unsealed.clear();
    this.release(session, [...session.held]);
  }

  private hold(session: ClientSession, object: StoredObject): void {
    object.holders.add(session.clientId);
    session.held.add(object.id);
  }

  private unhold(session: ClientSession, object: StoredObject): void {
    if (!session.held.delete(object.id)) return;
    object.holders.delete(session.clientId);
    if (object.deleted && object.holders.size === 0) this.discard(object);
  }

  /** The physical free of a deleted object, once nobody holds it. */
  private discard(object: StoredObject): void {
    if (!this.deferred.delete(object.id)) return;
    this.pool.free(object.placement);
  }

  private sealedObject(id: string): StoredObject {
    const object = this.objects.get(id);
    if (!object) throw new TrellisError('ObjectNotFound', `object ${id} does not exist`);
    if (!object.sealed) throw new TrellisError('NotSealed', `object ${id} is not sealed yet`);
    return object;
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

function locate(object: StoredObject): BlobLocation {
  return { id: object.id, size: object.nbytes, segment: object.placement.segment, offset: object.placement.offset };
}
