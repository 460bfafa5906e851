/**
 * A name's versions: every change of what a name points to is a new version 1, 2, 3, ...,
 * newest first, the oldest dropped past the keep limit (--keep-versions). Pure functions over
 * a history, so that a daemon alone (NameTable) and a cluster (the value of a name's etcd key)
 * compute a write the same way, and check `expectVersion` against the history they write over.
 */
import { TrellisError } from '../errors';
import type { NameVersion } from '../protocol/messages';

export type { NameVersion };

export const DEFAULT_KEEP_VERSIONS = 10;

export interface NameHistory {
  /** Newest first, never empty: versions[0] is what the name points to now. */
  readonly versions: readonly NameVersion[];
  /** The highest version ever given, so that a dropped version's number is not given again. */
  readonly last: number;
}

/** What a write wants of the name's current version. */
export interface NameWrite {
  readonly id: string;
  /** Move the name if it points to another object (else NameExists). */
  readonly override: boolean;
  /** The version the name must be at (0: must not exist), checked with the write. */
  readonly expectVersion?: number;
}

export const latestVersion = (history: NameHistory | undefined): number => history?.versions[0].version ?? 0;

/**
 * The history after setting `name` to write.id. Setting it to what it already points to keeps
 * the history as it is. Errors: Conflict (expectVersion), NameExists.
 */
export function nextHistory(
  name: string,
  current: NameHistory | undefined,
  write: NameWrite,
  keep: number,
  now = Date.now(),
): NameHistory {
  const latest = current?.versions[0];
  if (write.expectVersion !== undefined && write.expectVersion !== (latest?.version ?? 0)) {
    throw versionConflict(name, write.expectVersion, latest?.version ?? 0);
  }
  if (latest?.id === write.id) return current!;
  if (latest && !write.override && write.expectVersion === undefined) {
    throw new TrellisError(
      'NameExists',
      `name ${JSON.stringify(name)} is taken by ${latest.id}; pass override to move it`,
    );
  }
  const version = (current?.last ?? 0) + 1;
  const versions = [{ version, id: write.id, createdAt: now }, ...(current?.versions ?? [])].slice(
    0,
    Math.max(1, keep),
  );
  return { versions, last: version };
}

/** The history without `version`; undefined when it was the only one. Errors: NameNotFound. */
export function withoutVersion(
  name: string,
  current: NameHistory | undefined,
  version: number,
): NameHistory | undefined {
  if (!current?.versions.some((entry) => entry.version === version)) throw versionNotFound(name, version, current);
  const versions = current.versions.filter((entry) => entry.version !== version);
  return versions.length === 0 ? undefined : { versions, last: current.last };
}

/** The history without the versions that point to `id`; undefined when none is left. */
export function withoutObject(current: NameHistory, id: string): NameHistory | undefined {
  const versions = current.versions.filter((entry) => entry.id !== id);
  return versions.length === 0 ? undefined : { versions, last: current.last };
}

/** The object `version` of the name points to. Errors: NameNotFound naming the name and version. */
export function idAtVersion(name: string, current: NameHistory | undefined, version: number): string {
  const found = current?.versions.find((entry) => entry.version === version);
  if (!found) throw versionNotFound(name, version, current);
  return found.id;
}

/**
 * A history as the durable catalog or an older daemon kept it; `last` is the highest version
 * ever given, when it was kept (a dropped latest version's number is not given again).
 */
export function historyOf(versions: readonly NameVersion[], last = 0): NameHistory {
  return { versions: [...versions], last: Math.max(last, ...versions.map((entry) => entry.version)) };
}

export function versionConflict(name: string, expected: number, current: number): TrellisError {
  const now = current === 0 ? 'it is not published (version 0)' : `it is at version ${current}`;
  return new TrellisError('Conflict', `name ${JSON.stringify(name)}: expected version ${expected}, but ${now}`);
}

function versionNotFound(name: string, version: number, current: NameHistory | undefined): TrellisError {
  if (!current)
    return new TrellisError(
      'NameNotFound',
      `name ${JSON.stringify(name)} is not published (asked for version ${version})`,
    );
  const kept = current.versions.map((entry) => entry.version).join(', ');
  return new TrellisError('NameNotFound', `name ${JSON.stringify(name)} has no version ${version} (kept: ${kept})`);
}
