/**
 * The daemon half of importArchive: the client has written every blob of a verified archive into
 * its own unsealed blobs (invisible to others); this seals them, creates the tree's metadata
 * objects and names the root in one step, so the import becomes visible whole or not at all.
 * Content the daemon already has (same topHash) is answered with that object instead, and the
 * client's copies are given back.
 */
import { TrellisError } from '../errors';
import type { ArchiveRef, ImportArchiveReply, ParentRef } from '../protocol/messages';
import { isObjectId } from '../protocol/ids';
import { checkName } from '../protocol/names';
import { whenDone } from './metadata/meta-service';
import type { MetadataSpec } from './object-table';
import type { DaemonState } from './request-context';
import type { ClientSession } from './session';
import * as check from './validate';

const KIND = 'importArchive';
const TOP_HASH = /^[0-9a-f]{64}$/;

export function topHash(kind: string, body: check.Body): string {
  const value = body.topHash;
  if (typeof value !== 'string' || !TOP_HASH.test(value)) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: topHash must be 64 lowercase hex digits, got ${check.describe(value)}`,
    );
  }
  return value;
}

interface ParsedImport {
  topHash: string;
  root: ArchiveRef;
  nodes: Array<MetadataSpec & { refs: Record<string, ArchiveRef> }>;
  seal: string[];
  name?: string;
  override: boolean;
  /** The manifest's parents (ids); those that exist here are recorded on a new root. */
  parents: string[];
  /** A root blob's labels. */
  rootLabels: Record<string, string>;
}

/**
 * Errors: InvalidArgument (a malformed tree, a blob not referenced or not this client's),
 * NameExists, AlreadySealed, PermissionDenied, ObjectNotFound.
 */
export function importArchive(
  state: DaemonState,
  session: ClientSession,
  body: check.Body,
): ImportArchiveReply | Promise<ImportArchiveReply> {
  const request = parseImport(body);
  const existing = state.archives.find(request.topHash);
  if (existing !== undefined) {
    for (const id of request.seal) state.table.abort(session, id);
    return nameRoot(state, session, request, existing, true);
  }
  // Everything is checked before anything changes: the seal ids, every member, the name.
  state.table.checkMetadata(session, { typename: 'check', members: {}, fields: {}, labels: {} }, request.seal);
  if (request.name !== undefined) {
    if (!request.override) state.names.refuseTaken(request.name);
    state.meta.requireWritable(`publish name ${JSON.stringify(request.name)}`);
  }
  // Lineage travels with the archive, but only parents this daemon can see are recorded.
  const visible = state.meta.view(() => request.parents.filter((id) => state.meta.exists(id)));
  return whenDone(visible, (parents) =>
    importNodes(
      state,
      session,
      request,
      parents.map((id) => ({ id })),
    ),
  );
}

/** Creates the archive's objects, once its parents are known; names the root. */
function importNodes(
  state: DaemonState,
  session: ClientSession,
  request: ParsedImport,
  derivedFrom: ParentRef[],
): ImportArchiveReply | Promise<ImportArchiveReply> {
  if ('node' in request.root) request.nodes[request.root.node].derivedFrom = derivedFrom;
  const sealed = new Set<string>();
  const created: string[] = [];
  try {
    for (const node of request.nodes) {
      const toSeal: string[] = [];
      for (const [key, ref] of Object.entries(node.refs)) {
        const id = 'blob' in ref ? ref.blob : created[ref.node];
        node.members[key] = id;
        if ('blob' in ref && !sealed.has(id)) {
          sealed.add(id);
          toSeal.push(id);
        }
      }
      created.push(state.table.createMetadata(session, node, toSeal).id);
    }
    if ('blob' in request.root)
      state.table.seal(session, request.root.blob, false, { derivedFrom, labels: request.rootLabels });
  } catch (error) {
    // Not expected after the checks above; still, leave nothing half made.
    if (created.length > 0) state.table.delete(undefined, created, { deep: true, force: true });
    throw error;
  }
  const rootId = 'blob' in request.root ? request.root.blob : created[request.root.node];
  state.archives.record(request.topHash, rootId);
  return nameRoot(state, session, request, rootId, false);
}

function nameRoot(
  state: DaemonState,
  session: ClientSession,
  request: ParsedImport,
  id: string,
  existed: boolean,
): ImportArchiveReply | Promise<ImportArchiveReply> {
  if (request.name === undefined) return { id, existed };
  const named = { id, name: request.name, override: request.override, persist: false };
  if (existed) return whenDone(state.meta.putNames({ [request.name]: id }, request.override), () => ({ id, existed }));
  return whenDone(state.meta.publishNew(session, [named]), () => ({ id, existed }));
}

function parseImport(body: check.Body): ParsedImport {
  const seal = check.objectIds(KIND, body, 'seal');
  const blobs = new Set(seal);
  const used = new Set<string>();
  const nodesBody = body.nodes;
  if (!Array.isArray(nodesBody) || nodesBody.length > check.MAX_IDS_PER_REQUEST) {
    throw new TrellisError('InvalidArgument', `${KIND}: nodes must be a list of at most ${check.MAX_IDS_PER_REQUEST}`);
  }
  const parseRef = (value: unknown, before: number, where: string): ArchiveRef => {
    const ref = value as Record<string, unknown>;
    if (typeof ref === 'object' && ref !== null && typeof ref.blob === 'string' && blobs.has(ref.blob)) {
      used.add(ref.blob);
      return { blob: ref.blob };
    }
    if (
      typeof ref === 'object' &&
      ref !== null &&
      Number.isSafeInteger(ref.node) &&
      (ref.node as number) >= 0 &&
      (ref.node as number) < before
    ) {
      return { node: ref.node as number };
    }
    throw new TrellisError(
      'InvalidArgument',
      `${KIND}: ${where} must be one of the seal blobs or an earlier node, got ${check.describe(value)}`,
    );
  };
  const nodes = nodesBody.map((value, index) => {
    const node = check.expectBody(KIND, value);
    const refsBody = node.members;
    if (typeof refsBody !== 'object' || refsBody === null || Array.isArray(refsBody)) {
      throw new TrellisError('InvalidArgument', `${KIND}: node ${index} members must be a map`);
    }
    const refs: Record<string, ArchiveRef> = {};
    for (const [key, ref] of Object.entries(refsBody)) {
      if (key.length === 0 || key.length > 256)
        throw new TrellisError('InvalidArgument', `${KIND}: member keys must be 1 to 256 characters`);
      refs[key] = parseRef(ref, index, `node ${index} member ${JSON.stringify(key)}`);
    }
    return {
      typename: check.typename(KIND, node),
      fields: check.fields(KIND, node),
      labels: check.labels(KIND, node),
      members: {},
      refs,
    };
  });
  const root = parseRef(body.root, nodes.length, 'root');
  if ('node' in root ? root.node !== nodes.length - 1 : nodes.length > 0) {
    throw new TrellisError(
      'InvalidArgument',
      `${KIND}: the root must be the last node, or a blob when there are no nodes`,
    );
  }
  for (const id of blobs) {
    if (!used.has(id))
      throw new TrellisError('InvalidArgument', `${KIND}: blob ${id} is in seal but no member refers to it`);
  }
  const name = body.name === undefined || body.name === null ? undefined : checkName(body.name);
  const parents = check.parentRefs(KIND, body).filter(isObjectId);
  return {
    topHash: topHash(KIND, body),
    root,
    nodes,
    seal,
    name,
    override: check.flag(KIND, body, 'override', false),
    parents,
    rootLabels: check.labels(KIND, body, 'rootLabels'),
  };
}
