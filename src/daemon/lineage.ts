/**
 * Lineage: which objects an object was made from. A put records its parents by id when the
 * object is created (with the name, when a parent was given by name), and never pins them:
 * a parent may be deleted later, and a lineage then shows it as missing. The walk goes through
 * the metadata seam (getMeta), so it sees other instances' persisted objects in a cluster too.
 */
import { isTrellisError, TrellisError } from '../errors';
import { detachedId, isObjectId } from '../protocol/ids';
import type { LineageEntry, ParentRef } from '../protocol/messages';
import type { MetaService } from './metadata/meta-service';
import type { NameTable } from './names';
import { ownString } from './own-bytes';

export const DEFAULT_LINEAGE_DEPTH = 10;
/** Entries one lineage answers at most: a wide, deep graph must not make a huge reply. */
export const MAX_LINEAGE_ENTRIES = 10_000;

/**
 * The parents of a new object, by id: each must exist now (here or in the cluster view).
 * Names are resolved now; a parent named twice is recorded once.
 * Errors: NameNotFound, ObjectNotFound naming the parent, InvalidArgument.
 */
export function resolveParents(
  kind: string,
  refs: readonly string[],
  names: NameTable,
  meta: MetaService,
): ParentRef[] {
  if (refs.length === 0) return [];
  const parents = new Map<string, ParentRef>();
  for (const ref of refs) {
    const id = names.resolve(ref);
    if (!meta.exists(id)) throw new TrellisError('ObjectNotFound', `${kind}: parent ${ref} does not exist`);
    // Kept with the child for its life: strings of their own, not slices of the request's (own-bytes.ts).
    if (!parents.has(id)) parents.set(id, { id: detachedId(id), ...nameAndVersion(ref, names) });
  }
  return [...parents.values()];
}

/** For a ref given by name, that name and the version it resolved to now; nothing for an id. */
function nameAndVersion(ref: string, names: NameTable): { name: string; version: number } | Record<string, never> {
  const version = isObjectId(ref) ? undefined : names.history(ref)?.versions[0].version;
  return version === undefined ? {} : { name: ownString(ref), version };
}

/**
 * The object `ref` and its ancestors, breadth first, the object itself at depth 0, each once
 * (at its smallest depth). A parent deleted since is `missing: true` with typename null, and
 * its own parents are unknown. Errors: NameNotFound, ObjectNotFound (the object itself).
 */
export function lineage(ref: string, maxDepth: number, names: NameTable, meta: MetaService): LineageEntry[] {
  const id = names.resolve(ref);
  const root = meta.getMeta(id);
  const entries: LineageEntry[] = [
    { depth: 0, id, typename: root.typename, ...nameAndVersion(ref, names), missing: false },
  ];
  const seen = new Set([id]);
  let generation: Array<{ parents: readonly ParentRef[] }> = [{ parents: root.parents ?? [] }];
  for (let depth = 1; depth <= maxDepth && generation.length > 0; depth++) {
    const next: Array<{ parents: readonly ParentRef[] }> = [];
    for (const child of generation) {
      for (const parent of child.parents) {
        if (seen.has(parent.id) || entries.length >= MAX_LINEAGE_ENTRIES) continue;
        seen.add(parent.id);
        const found = metaOrUndefined(meta, parent.id);
        const entry: LineageEntry = {
          depth,
          id: parent.id,
          typename: found?.typename ?? null,
          missing: found === undefined,
        };
        if (parent.name !== undefined) entry.name = parent.name;
        if (parent.version !== undefined) entry.version = parent.version;
        entries.push(entry);
        if (found) next.push({ parents: found.parents ?? [] });
      }
    }
    generation = next;
  }
  return entries;
}

function metaOrUndefined(meta: MetaService, id: string): { typename: string; parents?: ParentRef[] } | undefined {
  if (!meta.exists(id)) return undefined;
  try {
    return meta.getMeta(id);
  } catch (error) {
    // Still listed, but gone (a member forced away under it, an expiry under way): missing.
    if (isTrellisError(error) && error.code === 'ObjectNotFound') return undefined;
    throw error;
  }
}
