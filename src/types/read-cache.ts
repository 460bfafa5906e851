/**
 * ReadCache: the decoded items of an immutable list, kept for the parts of it that are read
 * again. Items are kept in pages of PAGE items, and a page is admitted only once it has been
 * read more times than it holds items, that is, as the list is being read a second time.
 *
 * Why second-touch admission: keeping an item makes the garbage collector copy it out of the
 * young generation, which costs about as much as decoding it again. A single pass over a large
 * list (the common case) should leave nothing behind in the reader's heap and pay no such copies;
 * a list read over and over should cost what a JS array does from its third pass on. Pages rather
 * than one array: one array for a large list would be a large object, which V8 allocates with
 * fresh pages of memory and scans for young items at every minor collection.
 */
const PAGE_BITS = 10;
const PAGE = 2 ** PAGE_BITS;
const SLOT_MASK = PAGE - 1;

/** What the cache reads items from. */
export interface ItemSource<T> {
  readonly count: number;
  itemAt(index: number): T;
}

export class ReadCache<T> {
  /** Admitted pages; undefined in a page marks an item not decoded yet. */
  private readonly pages: Array<T[] | undefined>;
  /** Reads of each page before it was admitted. */
  private readonly reads: Uint32Array;

  constructor(private readonly source: ItemSource<T>) {
    const pageCount = Math.ceil(source.count / PAGE);
    this.pages = new Array<T[] | undefined>(pageCount);
    this.reads = new Uint32Array(pageCount);
  }

  /** The item at `index`, from the cache or decoded by the source (and kept if its page is admitted). */
  read(index: number): T {
    const pageIndex = index >>> PAGE_BITS;
    let page = this.pages[pageIndex];
    if (page === undefined) {
      const items = Math.min(PAGE, this.source.count - (pageIndex << PAGE_BITS));
      if (++this.reads[pageIndex] <= items) return this.source.itemAt(index);
      page = this.pages[pageIndex] = new Array<T>(PAGE);
    }
    const kept = page[index & SLOT_MASK];
    return kept !== undefined ? kept : (page[index & SLOT_MASK] = this.source.itemAt(index));
  }
}
