/**
 * ReadCache: the decoded items of an immutable list, read a page of PAGE items at a time when
 * the list is read in order, and kept for the parts of it that are read again.
 *
 * Reads in order (an index that starts a page or follows the previous one) decode the whole page
 * in one loop into a window, and the reads after them are an array load: a fresh process runs
 * one small loop hot instead of a chain of calls per item, so V8 optimizes the reading early, and
 * a single pass over a large list keeps nothing but the current window. Reads out of order decode
 * just their item, so random access never pays for a page.
 *
 * A page is kept only once it has been read more times than it holds items, that is, as the list
 * is being read a second time. Why second-touch admission: keeping an item makes the garbage
 * collector copy it out of the young generation, which costs about as much as decoding it again.
 * A list read over and over costs what a JS array does from its third pass on. Pages rather than
 * one array: one array for a large list would be a large object, which V8 allocates with fresh
 * pages of memory and scans for young items at every minor collection.
 */
export const PAGE_BITS = 10;
const PAGE = 2 ** PAGE_BITS;
export const SLOT_MASK = PAGE - 1;

/** What the cache reads items from. */
export interface ItemSource<T> {
  readonly count: number;
  itemAt(index: number): T;
}

export class ReadCache<T> {
  /** Admitted pages, whole. */
  private readonly pages: Array<T[] | undefined>;
  /** Items of each page decoded before it was admitted. */
  private readonly reads: Uint32Array;
  /**
   * The page that reads are served from now (-1: none), and its items. Read directly by a
   * caller's hot path (ShareableList.get), so that a read in the window is no call at all.
   */
  windowPage = -1;
  window: T[] = [];
  /** The index of the last read the window did not serve, to tell reads in order from others. */
  private last = -1;
  /**
   * The window of pages read for the first time, decoded into the same array page after page:
   * a single pass then makes no arrays (a fresh one per page was a fifth of what the pass allocated
   * over a mixed list). A page that is kept gets an array of its own.
   */
  private readonly reused: T[] = [];

  constructor(private readonly source: ItemSource<T>) {
    const pageCount = Math.ceil(source.count / PAGE);
    this.pages = new Array<T[] | undefined>(pageCount);
    this.reads = new Uint32Array(pageCount);
  }

  /** The item at `index` (0 <= index < count; the caller checks). */
  read(index: number): T {
    if (index >>> PAGE_BITS === this.windowPage) return this.window[index & SLOT_MASK];
    return this.miss(index);
  }

  private miss(index: number): T {
    const pageIndex = index >>> PAGE_BITS;
    const kept = this.pages[pageIndex];
    if (kept !== undefined) return this.show(pageIndex, kept)[index & SLOT_MASK];
    const inOrder = (index & SLOT_MASK) === 0 || index === this.last + 1;
    this.last = index;
    const items = Math.min(PAGE, this.source.count - (pageIndex << PAGE_BITS));
    const readBefore = this.reads[pageIndex];
    if (!inOrder && readBefore < items) {
      this.reads[pageIndex]++;
      return this.source.itemAt(index);
    }
    // Read in full before: this is the second time, so keep it.
    const keep = readBefore >= items;
    const page = this.decode(pageIndex, items, keep ? new Array<T>(items) : this.reused);
    // A page with an item that does not decode is read an item at a time, so that only that item throws.
    if (page === undefined) return this.source.itemAt(index);
    if (keep) this.pages[pageIndex] = page;
    return this.show(pageIndex, page)[index & SLOT_MASK];
  }

  /** Every item of a page into `page`, in one loop; undefined when one of them throws. */
  private decode(pageIndex: number, items: number, page: T[]): T[] | undefined {
    const source = this.source;
    const first = pageIndex << PAGE_BITS;
    // The window may be the array about to be overwritten.
    if (page === this.window) this.windowPage = -1;
    try {
      for (let i = 0; i < items; i++) page[i] = source.itemAt(first + i);
    } catch {
      return undefined;
    }
    this.reads[pageIndex] += items;
    return page;
  }

  private show(pageIndex: number, page: T[]): T[] {
    this.windowPage = pageIndex;
    this.window = page;
    return page;
  }
}
