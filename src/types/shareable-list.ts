/**
 * ShareableList: a fixed-length list whose slots live in one blob (layout in
 * shareable-list-layout.ts). Its creator fills and changes it in place; freeze() seals the
 * blob, after which it never changes and any process can open it and read items straight from
 * shared memory, with no round trip per item.
 *
 * Reads decode items straight from shared memory: bytes come back as views of a frozen list's
 * blob (copies before freeze, since set() may overwrite them). A frozen list is read by
 * SealedListReader, built for a fresh process's first pass, a page of items at a time when read
 * in order, and keeps the decoded items of pages it reads a second time (see ReadCache), so
 * repeated passes cost what reading a JS array does, while a single pass over a large list keeps
 * nothing but its current page.
 *
 * Caveat: a frozen list reads shared memory that this client holds a reference to. Once this
 * client deletes or releases the list, the daemon may hand that memory to another object, so the
 * list (and the Buffers it returned) must not be used after `client.delete(list.name)` here.
 */
import type { Blob, BlobWriter } from '../client/blobs';
import type { Client } from '../client/client';
import type { ObjectHandle } from '../client/object-handle';
import { isTrellisError, TrellisError } from '../errors';
import { guardResolve } from './malformed';
import { PAGE_BITS, ReadCache, SLOT_MASK } from './read-cache';
import { SealedListReader } from './shareable-list-reader';
import {
  encodeItem,
  initialCapacity,
  listBytes,
  ListBytes,
  MAX_LIST_BYTES,
  SHAREABLE_LIST_TYPENAME,
  type EncodedItem,
  type ShareableItem,
} from './shareable-list-layout';

export { SHAREABLE_LIST_TYPENAME, type ShareableItem };

export interface ShareableListOptions {
  /** Payload bytes to reserve for every slot, so that later set()s can store larger values. */
  capacity?: number;
}

// Read once (see SealedListReader on esbuild's getters for imports).
const WINDOW_BITS = PAGE_BITS;
const WINDOW_MASK = SLOT_MASK;

const SUPPORTED = 'a ShareableList holds Buffer/Uint8Array, string, number, bigint, boolean and null';

export class ShareableList implements Iterable<ShareableItem> {
  /** The blob's id: hand it to other processes, which open the list with it. */
  readonly name: string;
  readonly length: number;
  private slots: ListBytes;
  /**
   * mutable: created here, set() allowed; freezing: the seal is on its way; frozen: sealed by
   * this client; opened: a frozen list this client opened (or got from a resolver).
   */
  private state: 'mutable' | 'freezing' | 'frozen' | 'opened';
  /** The creator's handle on the unsealed blob, until freeze. */
  private writer: BlobWriter | undefined;
  private freezing: Promise<void> | undefined;
  /** Decoded items of a sealed list that is being read again; undefined before the seal. */
  private cache: ReadCache<ShareableItem> | undefined;

  private constructor(
    private readonly client: Client,
    slots: ListBytes,
    writer: BlobWriter | undefined,
  ) {
    this.name = slots.id;
    this.length = slots.count;
    this.slots = slots;
    this.writer = writer;
    this.state = writer ? 'mutable' : 'opened';
    this.cache = slots.sealed ? new ReadCache(SealedListReader.over(slots) ?? slots) : undefined;
  }

  /**
   * A new, mutable list holding `items`, visible to others once frozen.
   * Errors: InvalidArgument (an item or option), OutOfMemory.
   */
  static async create(
    client: Client,
    items: Iterable<ShareableItem>,
    options: ShareableListOptions = {},
  ): Promise<ShareableList> {
    const values = toArray(items);
    const reserved = options.capacity ?? 0;
    if (!Number.isSafeInteger(reserved) || reserved < 0) {
      throw new TrellisError(
        'InvalidArgument',
        `ShareableList.create: capacity must be a non-negative integer number of bytes, got ${String(reserved)}`,
      );
    }
    // An index loop, not map(): a sparse array's holes are undefined items, which must be refused.
    const encoded: EncodedItem[] = [];
    const capacities: number[] = [];
    for (let index = 0; index < values.length; index++) {
      encoded.push(encodeOrThrow(values[index], index, 'ShareableList.create'));
      capacities.push(initialCapacity(encoded[index], reserved));
    }
    const size = listBytes(capacities);
    if (size > MAX_LIST_BYTES) {
      throw new TrellisError(
        'InvalidArgument',
        `ShareableList.create: ${values.length} items need ${size} bytes; a list holds at most ${MAX_LIST_BYTES}`,
      );
    }

    const writer = await client.createBlob(size, { typename: SHAREABLE_LIST_TYPENAME });
    try {
      // The allocator may hand out memory that held an earlier object: start from zeros.
      writer.buffer.fill(0);
      const slots = ListBytes.format(writer.buffer, writer.id, capacities);
      encoded.forEach((item, index) => slots.writeAt(index, item));
      return new ShareableList(client, slots, writer);
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  /**
   * A read-only view of a frozen list, from any process.
   * Errors: ObjectNotFound, NotSealed (not frozen yet), InvalidArgument (not an id), TypeMismatch.
   */
  static async open(client: Client, name: string): Promise<ShareableList> {
    let blob: Blob;
    try {
      blob = await client.getBlob(name);
    } catch (error) {
      if (!isTrellisError(error, 'NotSealed')) throw error;
      throw new TrellisError(
        'NotSealed',
        `ShareableList ${name} is not frozen yet: its creator must call freeze() before others can open it`,
        {
          cause: error,
        },
      );
    }
    return ShareableList.fromBlob(client, blob);
  }

  /** A read-only list over a sealed blob that this client already holds. Errors: TypeMismatch. */
  static fromBlob(client: Client, blob: Blob): ShareableList {
    return new ShareableList(client, ListBytes.open(blob.buffer, blob.id), undefined);
  }

  /** True once the list is sealed (always, for a list that was opened). */
  get frozen(): boolean {
    return this.state === 'frozen' || this.state === 'opened';
  }

  /** Errors: InvalidArgument (index), TypeMismatch (a corrupt blob). */
  get(index: number): ShareableItem {
    // The frozen list's path first, in as few steps as possible (see SealedListReader on why):
    // `index >>> 0 === index` holds for exactly the integers from 0 to 2^32 - 1 (and would
    // throw for a symbol or a bigint, hence the typeof).
    const cache = this.cache;
    if (cache !== undefined && typeof index === 'number' && index >>> 0 === index && index < this.length) {
      return index >>> WINDOW_BITS === cache.windowPage ? cache.window[index & WINDOW_MASK] : cache.read(index);
    }
    if (!this.isIndex(index)) throw this.badIndex(index, 'get');
    return this.read(index);
  }

  /** Replaces an item in place; nothing changes when it throws. Errors: AlreadySealed, InvalidArgument. */
  set(index: number, value: ShareableItem): void {
    if (this.state !== 'mutable') {
      const why = this.state === 'opened' ? 'it was opened read-only' : 'it is frozen';
      throw new TrellisError('AlreadySealed', `ShareableList ${this.name}: cannot set item ${String(index)}: ${why}`);
    }
    if (!this.isIndex(index)) throw this.badIndex(index, 'set');
    const item = encodeOrThrow(value, index, `ShareableList ${this.name}: set`);
    const capacity = this.slots.capacityAt(index);
    if (item.length > capacity) {
      throw new TrellisError(
        'InvalidArgument',
        `ShareableList ${this.name}: item ${index} does not fit: the new value needs ${item.length} bytes and the slot holds ${capacity}`,
      );
    }
    this.slots.writeAt(index, item);
  }

  toArray(): ShareableItem[] {
    const items = new Array<ShareableItem>(this.length);
    for (let i = 0; i < this.length; i++) items[i] = this.read(i);
    return items;
  }

  *[Symbol.iterator](): Iterator<ShareableItem> {
    const cache = this.cache;
    // A frozen list reads in order from its cache, a page at a time; an unfrozen one item by item.
    if (cache !== undefined) for (let i = 0; i < this.length; i++) yield cache.read(i);
    else for (let i = 0; i < this.length; i++) yield this.read(i);
  }

  /**
   * Seals the blob: the list becomes immutable and other processes can open it. Calling it
   * again, or on an opened list, does nothing. `labels` and `parents` (lineage) are recorded
   * with the seal. Errors: ConnectionClosed, InvalidArgument, ObjectNotFound (a parent).
   */
  freeze(options: { labels?: Record<string, string>; parents?: string[] } = {}): Promise<void> {
    if (this.state === 'mutable') {
      this.state = 'freezing';
      this.freezing = this.seal(this.writer!, options);
    }
    return this.freezing ?? Promise.resolve();
  }

  private async seal(
    writer: BlobWriter,
    options: { labels?: Record<string, string>; parents?: string[] },
  ): Promise<void> {
    try {
      await writer.seal(options);
    } catch (error) {
      // The blob is still ours and writable: leave the list as it was, so freeze can be retried.
      this.state = 'mutable';
      this.freezing = undefined;
      throw error;
    }
    // The writable bytes are detached now; writer.buffer is the sealed blob's read-only view.
    this.slots = ListBytes.open(writer.buffer, this.name);
    this.cache = new ReadCache(SealedListReader.over(this.slots) ?? this.slots);
    this.writer = undefined;
    this.state = 'frozen';
  }

  private read(index: number): ShareableItem {
    return this.cache !== undefined ? this.cache.read(index) : this.readUnsealed(index);
  }

  private readUnsealed(index: number): ShareableItem {
    if (this.slots.bytes.byteLength === 0) {
      // Between the seal's reply and freeze() resolving, the writable buffer is already gone.
      throw new TrellisError(
        'NotSealed',
        `ShareableList ${this.name} is being frozen: read it once freeze() has resolved`,
      );
    }
    return this.slots.itemAt(index);
  }

  private isIndex(index: number): boolean {
    return Number.isInteger(index) && index >= 0 && index < this.length;
  }

  /** The error for an index that is not one; built only then, so that a read stays cheap. */
  private badIndex(index: number, verb: string): TrellisError {
    const what = Number.isInteger(index) ? 'is out of range' : 'is not an integer';
    const valid = this.length === 0 ? 'the list is empty' : `valid indexes are 0..${this.length - 1}`;
    return new TrellisError(
      'InvalidArgument',
      `ShareableList ${this.name}: ${verb}(${String(index)}): the index ${what}; ${valid}`,
    );
  }
}

function encodeOrThrow(value: unknown, index: number, context: string): EncodedItem {
  const item = encodeItem(value);
  if (typeof item === 'string')
    throw new TrellisError('InvalidArgument', `${context}: item ${index}: ${item}; ${SUPPORTED}`);
  return item;
}

function toArray(items: Iterable<ShareableItem>): unknown[] {
  if (Array.isArray(items)) return items;
  if (items === null || typeof (items as Partial<Iterable<unknown>>)?.[Symbol.iterator] !== 'function') {
    throw new TrellisError(
      'InvalidArgument',
      `ShareableList.create: items must be an array or another iterable, got ${typeof items}`,
    );
  }
  return Array.from(items);
}

/** The built-in resolver of trellis::ShareableList: a read-only list over the object's blob. */
export function resolveShareableList(object: ObjectHandle, client: Client): ShareableList {
  return guardResolve(object, () =>
    ShareableList.fromBlob(client, { id: object.id, size: object.nbytes, buffer: object.buffer }),
  );
}
