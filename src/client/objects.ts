/**
 * Metadata objects: the client half of createMetadata, getObject and getMeta. getObject brings
 * the whole tree and every blob in it in one round trip, so resolvers need no more.
 */
import { TrellisError } from '../errors';
import type { CreateMetadataRequest, GetObjectReply, ObjectMeta } from '../protocol/messages';
import { detachedId } from '../protocol/ids';
import { fromColumns } from '../protocol/plain-blob-columns';
import { sealingElsewhere, type BlobCache, type BlobWriter } from './blobs';
import type { Channel } from './channel';
import { ObjectHandle } from './object-handle';

export interface MetadataSpec {
  typename: string;
  /** member key -> object id */
  members?: Record<string, string>;
  labels?: Record<string, string>;
  /** Every other key is a field. */
  [field: string]: unknown;
}

export interface CreateMetadataOptions {
  /** This client's unsealed blobs to seal in the same round trip. */
  seal?: BlobWriter[];
  /** Publish the new object under this name in the same round trip. */
  name?: string;
  override?: boolean;
  /** In a cluster: make it visible cluster-wide in the same round trip (a name implies it). */
  persist?: boolean;
  /** Lineage: the objects (ids or names) this one was made from, recorded by id. */
  parents?: string[];
  /**
   * Members whose bytes go in the request itself (each at most MAX_INLINE_BLOB_BYTES): the
   * daemon copies them into new blobs in shared memory, so a small put is one round trip.
   */
  inlineMembers?: Record<string, Uint8Array>;
}

function toRequest(spec: MetadataSpec, options: CreateMetadataOptions): CreateMetadataRequest {
  if (typeof spec !== 'object' || spec === null || typeof spec.typename !== 'string') {
    throw new TrellisError('InvalidArgument', 'createMetadata: a typename is required (such as trellis::Value)');
  }
  const { typename, members, labels, ...fields } = spec;
  // Only the keys that are set: an undefined value would still travel (msgpack has one) and be
  // decoded, on the hot path of every small put.
  const request: CreateMetadataRequest = { typename, fields };
  if (members !== undefined) request.members = members;
  if (labels !== undefined) request.labels = labels;
  if (options.seal !== undefined && options.seal.length > 0) request.seal = options.seal.map((writer) => writer.id);
  if (options.name !== undefined) request.name = options.name;
  if (options.override !== undefined) request.override = options.override;
  if (options.persist !== undefined) request.persist = options.persist;
  if (options.parents !== undefined && options.parents.length > 0) request.parents = checkParents(options.parents);
  if (options.inlineMembers !== undefined) request.inlineMembers = options.inlineMembers;
  return request;
}

/** Parents as the daemon takes them: a list of ids or names. Errors: InvalidArgument. */
export function checkParents(parents: unknown): string[] {
  if (!Array.isArray(parents) || !parents.every((ref) => typeof ref === 'string' && ref.length > 0)) {
    throw new TrellisError(
      'InvalidArgument',
      `parents must be a list of object ids or names, got ${JSON.stringify(parents)}`,
    );
  }
  return parents;
}

export class Objects {
  /** Blob ids taken by getObject, by object id, so release(objectId) lets go of all of them. */
  private readonly blobsOf = new Map<string, string[]>();

  constructor(
    private readonly channel: Channel,
    private readonly blobs: BlobCache,
  ) {}

  /** Errors: InvalidArgument, ObjectNotFound, NotSealed, NameExists. */
  async create(spec: MetadataSpec, options: CreateMetadataOptions = {}): Promise<string> {
    const request = toRequest(spec, options);
    const { id } = await sealingElsewhere(options.seal ?? [], () => this.channel.request('createMetadata', request));
    return id;
  }

  /** Many objects in one round trip; all or none. */
  async createMany(entries: Array<{ spec: MetadataSpec; options?: CreateMetadataOptions }>): Promise<string[]> {
    const objects = entries.map((entry) => toRequest(entry.spec, entry.options ?? {}));
    const writers = entries.flatMap((entry) => entry.options?.seal ?? []);
    const { ids } = await sealingElsewhere(writers, () => this.channel.request('createMetadataMany', { objects }));
    return ids;
  }

  /**
   * Takes references to every blob in the tree; `version`: that kept version of the name `ref`.
   * Errors: ObjectNotFound, NameNotFound, NotSealed.
   */
  async get(ref: string, version?: number): Promise<ObjectHandle> {
    return this.handle(await this.channel.request('getObject', version === undefined ? { ref } : { ref, version }));
  }

  /**
   * Many objects in one round trip, all or none. Errors: ObjectNotFound (naming every ref that is
   * missing), NameNotFound, NotSealed.
   */
  async getMany(refs: string[]): Promise<ObjectHandle[]> {
    if (refs.length === 0) return [];
    const reply = await this.channel.request('getObjects', {
      refs,
      columns: true,
    });
    return fromColumns(reply).map((object) => this.handle(object));
  }

  private handle({ meta, blobs }: GetObjectReply): ObjectHandle {
    const views = new Map<string, Buffer>();
    // Sized, not pushed to: a pushed array keeps room for 17 (152 B per Tensor held).
    const kept = new Array<string>(blobs.length);
    for (let i = 0; i < blobs.length; i++) {
      // The ids kept until release keep nothing else alive (detachedId); the member's, once.
      const { id } = this.blobs.remember(blobs[i]);
      kept[i] = id;
      views.set(id, this.blobs.view(blobs[i]).buffer);
    }
    if (blobs.length > 0 && !(blobs.length === 1 && blobs[0].id === meta.id))
      this.blobsOf.set(detachedId(meta.id), kept);
    return new ObjectHandle(meta, views);
  }

  /**
   * An object got from the read index (no request): its member blobs, held through the index,
   * go with release(objectId) as getObject's do.
   */
  rememberBlobs(id: string, blobIds: string[]): void {
    if (blobIds.length > 0) this.blobsOf.set(id, blobIds);
  }

  async meta(ref: string): Promise<ObjectMeta> {
    return (await this.channel.request('getMeta', { ref })).meta;
  }

  /** The ids to release for these: an object's blobs as well as the object. */
  expand(ids: string[]): string[] {
    const all: string[] = [];
    for (const id of ids) {
      all.push(id, ...(this.blobsOf.get(id) ?? []));
      this.blobsOf.delete(id);
    }
    return all;
  }
}
