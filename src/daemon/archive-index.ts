/**
 * Which object holds the content of an archive: topHash -> object id, filled when an archive is
 * imported or exported here, so that importing content this daemon already has stores nothing
 * twice. Kept in memory only: after a restart an import stores the content again (once), which
 * costs space for a while but is never wrong, since a topHash names content, not an object.
 */
export class ArchiveIndex {
  private readonly idByTopHash = new Map<string, string>();
  private readonly topHashById = new Map<string, string>();

  /** `exists` tells whether an object is still live (a deleted one is forgotten lazily too). */
  constructor(private readonly exists: (id: string) => boolean) {}

  /** The live object with this topHash, or undefined. */
  find(topHash: string): string | undefined {
    const id = this.idByTopHash.get(topHash);
    if (id === undefined || this.exists(id)) return id;
    this.forget(id);
    return undefined;
  }

  /** The first object recorded for a topHash stays the one imports return. */
  record(topHash: string, id: string): void {
    if (this.find(topHash) !== undefined) return;
    this.idByTopHash.set(topHash, id);
    this.topHashById.set(id, topHash);
  }

  /** The object left the store. */
  forget(id: string): void {
    const topHash = this.topHashById.get(id);
    if (topHash === undefined) return;
    this.topHashById.delete(id);
    if (this.idByTopHash.get(topHash) === id) this.idByTopHash.delete(topHash);
  }
}
