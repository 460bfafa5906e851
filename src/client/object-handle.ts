/**
 * An object as a client holds it after getObject: its metadata tree, and for every blob in the
 * tree a view of shared memory, mapped already, so resolvers walk it without round trips.
 */
import { TrellisError } from '../errors';
import type { ObjectMeta } from '../protocol/messages';

export class ObjectHandle {
  constructor(
    readonly meta: ObjectMeta,
    private readonly views: ReadonlyMap<string, Buffer>,
  ) {}

  get id(): string {
    return this.meta.id;
  }
  get typename(): string {
    return this.meta.typename;
  }
  get nbytes(): number {
    return this.meta.nbytes;
  }
  get fields(): Record<string, unknown> {
    return this.meta.fields;
  }
  get labels(): Record<string, string> {
    return this.meta.labels;
  }

  memberKeys(): string[] {
    return Object.keys(this.meta.members);
  }

  hasMember(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.meta.members, key);
  }

  /** Errors: ObjectNotFound naming the key. */
  member(key: string): ObjectHandle {
    const meta = this.meta.members[key];
    if (!meta || !this.hasMember(key)) {
      throw new TrellisError(
        'ObjectNotFound',
        `object ${this.id} (${this.typename}) has no member ${JSON.stringify(key)}`,
      );
    }
    return new ObjectHandle(meta, this.views);
  }

  /** Whether this object is a blob (bytes of its own) rather than a metadata object. */
  get isBlob(): boolean {
    return this.views.has(this.id);
  }

  /** A blob's bytes: a read-only view of shared memory. Errors: TypeMismatch for non-blobs. */
  get buffer(): Buffer {
    const view = this.views.get(this.id);
    if (!view)
      throw new TrellisError('TypeMismatch', `object ${this.id} is a ${this.typename} with no bytes of its own`);
    return view;
  }
}
