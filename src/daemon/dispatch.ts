/**
 * One handler per request kind. The mapped type makes this table exhaustive: a kind added to
 * protocol/messages.ts and not handled here fails to compile. A handler returns its reply, or a
 * promise of it when it has to wait (for a name, or for the client's fd channel).
 */
import { toWireError, TrellisError, type WireError } from '../errors';
import type {
  BlobLocation,
  ClientKind,
  DaemonStatus,
  GetObjectReply,
  GetObjectsReply,
  ParentRef,
  ReadChunkReply,
  ReplyOf,
} from '../protocol/messages';
import { checkName } from '../protocol/names';
import { isWireError, toColumns } from '../protocol/plain-blob-columns';
import { importArchive, topHash } from './archive-import';
import { MAX_TTL_SECONDS } from './cluster/cluster-info';
import { abortInline, putBlobs, storeInline } from './inline-blobs';
import { DEFAULT_LINEAGE_DEPTH, lineage, resolveParents } from './lineage';
import { whenDone, type NewObject, type Pending } from './metadata/meta-service';
import { openReadIndex } from './read-index-grant';
import type { DaemonState, RequestContext } from './request-context';
import type { ClientSession } from './session';
import * as check from './validate';

type Handler<K extends ClientKind> = (ctx: RequestContext, body: check.Body) => ReplyOf<K> | Promise<ReplyOf<K>>;

export const DEFAULT_LIST_LIMIT = 1000;
/** getMany's ObjectNotFound lists at most this many of the refs it could not find. */
const MISSING_REFS_SHOWN = 10;

export const handlers: { [K in ClientKind]: Handler<K> } = {
  createBlobs(ctx, body) {
    const sizes = body.sizes;
    if (!Array.isArray(sizes) || sizes.length === 0 || sizes.length > check.MAX_IDS_PER_REQUEST) {
      throw new TrellisError(
        'InvalidArgument',
        `createBlobs: sizes must be a list of 1 to ${check.MAX_IDS_PER_REQUEST} sizes, got ${check.describe(sizes)}`,
      );
    }
    for (const size of sizes) {
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
        throw new TrellisError(
          'InvalidArgument',
          `createBlobs: blob size must be a non-negative integer, got ${check.describe(size)}`,
        );
      }
    }
    const typename = check.optionalTypename('createBlobs', body);
    const attaching = ctx.untilFdChannel();
    if (attaching) return attaching.then(() => handlers.createBlobs(ctx, body));
    const grantAll = (blobs: BlobLocation[]) => {
      try {
        for (const blob of blobs) ctx.grant(blob.segment);
      } catch (error) {
        for (const blob of blobs) ctx.state.table.abort(ctx.session, blob.id);
        throw error;
      }
      return { blobs };
    };
    const create = () => whenDone(ctx.state.residency.createBlobs(ctx.session, sizes as number[], typename), grantAll);
    // A blob that needs a new segment waits for it off the event loop, not in front of other requests.
    const reserving = ctx.state.pool.reserveAhead(sizes as number[]);
    return reserving ? reserving.then(create) : create();
  },

  putBlobs({ state, session }, body) {
    return putBlobs(state, session, body);
  },

  seal({ state, session }, body) {
    const id = check.objectId('seal', body);
    const hold = check.flag('seal', body, 'hold', true);
    const name = optionalName(body);
    const override = check.flag('seal', body, 'override', false);
    const persist = check.flag('seal', body, 'persist', false);
    const labels = check.labels('seal', body);
    const parents = check.parentRefs('seal', body);
    return whenDone(
      state.meta.view(() => resolveParents('seal', parents, state.names, state.meta)),
      (derivedFrom) => sealWith(state, session, { id, hold, name, override, persist, labels, derivedFrom }),
    );
  },

  abort({ state, session }, body) {
    state.table.abort(session, check.objectId('abort', body));
    return {};
  },

  abortBlobs({ state, session }, body) {
    state.table.abortMany(session, check.objectIds('abortBlobs', body));
    return {};
  },

  getBlobs(ctx, body) {
    const ids = check.objectIds('getBlobs', body);
    const attaching = ctx.untilFdChannel();
    if (attaching) return attaching.then(() => handlers.getBlobs(ctx, body));
    const { table, residency } = ctx.state;
    const blobs = residency.withResident(
      () => table.sealedBlobs(ids),
      () => table.getBlobs(ctx.session, ids),
    );
    return whenDone(blobs, (held) => {
      for (const blob of held) ctx.grant(blob.segment);
      return { blobs: held };
    });
  },

  release({ state, session }, body) {
    state.table.release(session, check.objectIds('release', body));
    if (body.indexSlots !== undefined) state.readIndex?.holdsDropped(check.slotList('release', body, 'indexSlots'));
    return {};
  },

  delete({ state, session }, body) {
    const ids = check.objectIds('delete', body);
    const deep = check.flag('delete', body, 'deep', true);
    const force = check.flag('delete', body, 'force', false);
    return whenDone(state.meta.delete(session, ids, { deep, force }), (deleted) => ({ deleted }));
  },

  exists({ state }, body) {
    const id = check.objectId('exists', body);
    return whenDone(
      state.meta.view(() => state.meta.exists(id)),
      (exists) => ({ exists }),
    );
  },

  listObjects({ state }, body) {
    const pattern = check.optionalString('listObjects', body, 'pattern');
    const labels = check.labels('listObjects', body);
    const limit = check.nonNegativeInteger('listObjects', body, 'limit', DEFAULT_LIST_LIMIT);
    return whenDone(state.meta.listObjects({ pattern, labels }, limit), (objects) => ({ objects }));
  },

  createMetadata({ state, session }, body) {
    // Parents may be other instances' objects: their records are loaded first (view).
    const parsed = state.meta.view(() => parseMetadataRequest('createMetadata', state, body));
    return whenDone(parsed, (request) =>
      withInlineMembers(state, session, [request], () =>
        whenDone(createAndPublish(state, session, [request]), ([id]) => ({ id })),
      ),
    );
  },

  createMetadataMany({ state, session }, body) {
    const objects = body.objects;
    if (!Array.isArray(objects) || objects.length > check.MAX_IDS_PER_REQUEST) {
      throw new TrellisError(
        'InvalidArgument',
        `createMetadataMany: objects must be a list of at most ${check.MAX_IDS_PER_REQUEST}, got ${check.describe(objects)}`,
      );
    }
    // Check everything first: the batch is all or none.
    const parsed = state.meta.view(() =>
      objects.map((object) =>
        parseMetadataRequest('createMetadataMany', state, check.expectBody('createMetadataMany', object)),
      ),
    );
    return whenDone(parsed, (requests) => createMany(state, session, requests));
  },

  getObject(ctx, body) {
    const ref = check.string('getObject', body, 'ref', 256);
    const attaching = ctx.untilFdChannel();
    if (attaching) return attaching.then(() => handlers.getObject(ctx, body));
    const version = optionalVersion('getObject', body);
    const id = version === undefined ? ctx.state.names.resolve(ref) : ctx.state.names.resolveVersion(ref, version);
    const fetch = check.flag('getObject', body, 'fetch', false);
    // Boxed: a view that loads records first would otherwise flatten the fetch's promise away.
    const remote = ctx.state.meta.view(() => ({ found: ctx.state.meta.remoteObject(id, fetch) }));
    return whenDone(remote, ({ found }) =>
      found instanceof Promise ? found.then((copy) => describeLocal(ctx, copy)) : (found ?? describeLocal(ctx, id)),
    );
  },

  getObjects(ctx, body) {
    const refs = check.refs('getObjects', body);
    const columns = check.flag('getObjects', body, 'columns', false);
    if (check.flag('getObjects', body, 'each', false)) return getEach(ctx, refs);
    const attaching = ctx.untilFdChannel();
    if (attaching) return attaching.then(() => handlers.getObjects(ctx, body));
    const { state } = ctx;
    const ids = refs.map((ref) => state.names.resolve(ref));
    // Other instances' records are loaded first (view). Checked before anything is taken, so the
    // batch is all or none and one error names every ref that is missing.
    const found = state.meta.view(() => {
      const missing = refs.filter((_, i) => !state.meta.exists(ids[i]));
      if (missing.length > 0) {
        const shown = missing.slice(0, MISSING_REFS_SHOWN).join(', ');
        const more = missing.length > MISSING_REFS_SHOWN ? ` and ${missing.length - MISSING_REFS_SHOWN} more` : '';
        throw new TrellisError(
          'ObjectNotFound',
          `getMany: ${missing.length} of ${refs.length} objects not found: ${shown}${more}`,
        );
      }
      // remoteObject without fetch answers at once: the metadata, no bytes.
      return ids.map((id) => (state.table.exists(id) ? undefined : state.meta.remoteObject(id, false)));
    });
    return whenDone(found, (remote) => {
      const local = ids.filter((_, i) => remote[i] === undefined);
      for (const id of local) state.table.sealedObject(id);
      return state.residency.withResident(
        () => local.flatMap((id) => state.table.blobsOf(id)),
        () => {
          const objects = ids.map(
            (id, i) => (remote[i] as ReplyOf<'getObject'> | undefined) ?? describeAndGrant(ctx, id),
          );
          return columns ? toColumns(objects, state.instanceId) : { objects };
        },
      );
    });
  },

  openReadIndex(ctx, body) {
    const attaching = ctx.untilFdChannel();
    if (attaching) return attaching.then(() => handlers.openReadIndex(ctx, body));
    return openReadIndex(ctx, body);
  },

  grantPutArena(ctx) {
    const attaching = ctx.untilFdChannel();
    if (attaching) return attaching.then(() => handlers.grantPutArena(ctx, {}));
    return ctx.state.putRings.grant(ctx.session, ctx.mapsSegments === true, (segment) => ctx.grant(segment));
  },

  drainPutRing() {
    // The drain itself came first, as before every request (connection.ts).
    return {};
  },

  getMeta({ state }, body) {
    const id = state.names.resolve(check.string('getMeta', body, 'ref', 256));
    return state.meta.view(() => {
      const meta = state.meta.getMeta(id);
      const resident = !state.table.exists(id) || state.table.blobsOf(id).every((blob) => blob.placement !== undefined);
      return { meta: { ...meta, parents: meta.parents ?? [], ...state.meta.persistence(id), resident } };
    });
  },

  putName({ state }, body) {
    const name = check.string('putName', body, 'name', 1024);
    const id = check.objectId('putName', body);
    const override = check.flag('putName', body, 'override', false);
    const unchecked = body.expectVersion === undefined || body.expectVersion === null;
    const expect = unchecked ? undefined : { [name]: check.nonNegativeInteger('putName', body, 'expectVersion') };
    const written = state.meta.putNames({ [checkName(name)]: id }, override, expect);
    return whenDone(written, (versions) => ({ version: versions[name] }));
  },

  putNames({ state }, body) {
    const names = check.nameRefs('putNames', body);
    const override = check.flag('putNames', body, 'override', false);
    return whenDone(state.meta.putNames(names, override), (versions) => ({ versions }));
  },

  versions({ state }, body) {
    return { versions: state.names.versions(check.string('versions', body, 'name', 1024)) };
  },

  dropVersion({ state }, body) {
    const name = checkName(check.string('dropVersion', body, 'name', 1024));
    const version = optionalVersion('dropVersion', body);
    if (version === undefined) {
      const got = check.describe(body.version);
      throw new TrellisError('InvalidArgument', `dropVersion: version must be an integer of 1 or more, got ${got}`);
    }
    return whenDone(state.meta.dropVersion(name, version), () => ({}));
  },

  getName({ state, session }, body) {
    const name = check.string('getName', body, 'name', 1024);
    const version = optionalVersion('getName', body);
    if (version !== undefined) return { id: state.names.resolveVersion(name, version) };
    const wait = check.flag('getName', body, 'wait', false);
    const timeoutMs =
      body.timeoutMs === undefined || body.timeoutMs === null
        ? undefined
        : check.nonNegativeInteger('getName', body, 'timeoutMs');
    const id = state.names.get(name, wait ? { owner: session.clientId, timeoutMs } : undefined);
    return typeof id === 'string' ? { id } : id.then((found) => ({ id: found }));
  },

  dropName({ state }, body) {
    const name = check.string('dropName', body, 'name', 1024);
    return whenDone(state.meta.dropName(name), (dropped) => ({ dropped }));
  },

  listNames({ state }, body) {
    // A cluster daemon holds only the names it uses: the meta service reads the others.
    return whenDone(state.meta.listNames(check.optionalString('listNames', body, 'pattern')), (names) => ({ names }));
  },

  label({ state }, body) {
    const id = state.names.resolve(check.string('label', body, 'ref', 256));
    const changes = check.labelChanges('label', body);
    return whenDone(state.meta.label(id, changes), (labels) => ({ labels }));
  },

  lineage({ state }, body) {
    const ref = check.string('lineage', body, 'ref', 256);
    const maxDepth = check.nonNegativeInteger('lineage', body, 'maxDepth', DEFAULT_LINEAGE_DEPTH);
    return whenDone(
      state.meta.view(() => lineage(ref, maxDepth, state.names, state.meta)),
      (entries) => ({ entries }),
    );
  },

  createStream({ state, session }, body) {
    const typename = check.typename('createStream', body);
    const schema =
      body.schema === undefined || body.schema === null ? undefined : check.bytes('createStream', body, 'schema');
    const params = check.map('createStream', body, 'params');
    return { id: state.streams.create(session, typename, schema, params) };
  },

  openWriter({ state, session }, body) {
    return state.streams.openWriter(session, check.objectId('openWriter', body));
  },

  openReader(ctx, body) {
    const id = check.objectId('openReader', body);
    const cursor = check.flag('openReader', body, 'cursor', false);
    if (cursor) {
      const attaching = ctx.untilFdChannel();
      if (attaching) return attaching.then(() => handlers.openReader(ctx, body));
    }
    const reply = ctx.state.streams.openReader(ctx.session, id, cursor);
    if (reply.cursor) ctx.grant(reply.cursor.segment);
    return reply;
  },

  writeChunk(ctx, body) {
    const id = check.objectId('writeChunk', body);
    const chunk = check.objectId('writeChunk', body, 'chunk');
    const appends = [{ chunk, seal: check.optionalIds('writeChunk', body, 'seal') }, ...chunkAppends(body)];
    const pending = ctx.state.streams.write(ctx.session, id, appends);
    const answer = () => {
      const recycled = ctx.state.streams.takeRecycled(ctx.session, id);
      if (recycled.length === 0) return {};
      for (const blob of recycled) ctx.grant(blob.segment);
      return { recycled };
    };
    return pending ? pending.then(answer) : answer();
  },

  readChunk(ctx, body) {
    const id = check.objectId('readChunk', body);
    const attaching = ctx.untilFdChannel();
    if (attaching) return attaching.then(() => handlers.readChunk(ctx, body));
    const grantAll = (reply: ReadChunkReply) => {
      for (const blob of reply.blobs ?? []) ctx.grant(blob.segment);
      for (const chunk of reply.more ?? []) for (const blob of chunk.blobs) ctx.grant(blob.segment);
      return reply;
    };
    const reply = ctx.state.streams.read(
      ctx.session,
      id,
      check.flag('readChunk', body, 'keep', false),
      check.flag('readChunk', body, 'ahead', false),
      check.nonNegativeInteger('readChunk', body, 'max', 1),
      check.flag('readChunk', body, 'prefetch', false),
    );
    return reply instanceof Promise ? reply.then(grantAll) : grantAll(reply);
  },

  finishStream({ state, session }, body) {
    state.streams.finish(session, check.objectId('finishStream', body));
    return {};
  },

  failStream({ state, session }, body) {
    state.streams.fail(session, check.objectId('failStream', body), check.string('failStream', body, 'reason', 4096));
    return {};
  },

  closeReader({ state, session }, body) {
    const unseen = body.unseen === undefined ? undefined : check.nonNegativeInteger('closeReader', body, 'unseen');
    state.streams.closeReader(session, check.objectId('closeReader', body), unseen);
    return {};
  },

  clusterInfo({ state }) {
    return state.meta.info();
  },

  persist({ state }, body) {
    const id = check.objectId('persist', body);
    const ttl = optionalTtl(body);
    return whenDone(state.meta.persist(id, ttl), () => ({}));
  },

  migrate({ state }, body) {
    return state.remote.migrate(check.string('migrate', body, 'ref', 256));
  },

  putGlobal({ state, session }, body) {
    const kind = 'putGlobal';
    const typename = check.typename(kind, body);
    const members = check.members(kind, body);
    const fields = check.fields(kind, body);
    const labels = check.labels(kind, body);
    const parents = check.parentRefs(kind, body);
    const name = optionalName(body);
    const override = check.flag(kind, body, 'override', false);
    const persist = check.flag(kind, body, 'persist', false);
    // Parents on other daemons are read from etcd first (see MetaService.view).
    return whenDone(
      state.meta.view(() => resolveParents(kind, parents, state.names, state.meta)),
      (derivedFrom) => {
        if (name !== undefined && !override) state.names.refuseTaken(name);
        if (name !== undefined || persist) state.meta.requireWritable(`publish a ${typename}`);
        const spec = { typename, members, fields, labels, derivedFrom };
        return state.remote.putGlobal(session, spec).then((id) => {
          if (name === undefined && !persist) return { id };
          // Published with the object, as a named or persisted put is.
          return whenDone(state.meta.publishNew(session, [{ id, name, override, persist }]), () => ({ id }));
        });
      },
    );
  },

  exportArchive({ state }, body) {
    const ref = check.string('exportArchive', body, 'ref', 256);
    const id = state.names.resolve(ref);
    const stream = state.streams.typenameOf(id);
    if (stream !== undefined) {
      throw new TrellisError(
        'InvalidArgument',
        `exportArchive: ${ref} is a stream (${stream}): streams are not exportable, read it into an object first`,
      );
    }
    state.table.sealedObject(id);
    return { id };
  },

  recordArchive({ state }, body) {
    const id = check.objectId('recordArchive', body);
    state.table.sealedObject(id);
    state.archives.record(topHash('recordArchive', body), id);
    return {};
  },

  findArchive({ state }, body) {
    return { id: state.archives.find(topHash('findArchive', body)) ?? null };
  },

  importArchive({ state, session }, body) {
    return importArchive(state, session, body);
  },

  status({ state }): DaemonStatus {
    return {
      instanceId: state.instanceId,
      pid: process.pid,
      socket: state.socketPath,
      version: state.version,
      // The put rings' reserve is no object's yet (put-rings.ts): usage moves with the objects.
      memoryUsage: state.pool.used - state.putRings.reservedBytes,
      memoryLimit: state.pool.policy.limit,
      memoryCapacity: state.pool.capacity,
      memoryReserved: state.pool.reserved,
      memorySpare: state.pool.spareReady,
      segments: state.pool.count,
      objects: state.table.size,
      names: state.names.size,
      clients: state.clientCount(),
      deferredFrees: state.table.deferredCount,
      streams: state.streams.size,
      spilled: state.table.notResident,
      persisted: state.meta.persistedCount(),
      remoteRecords: state.meta.remoteRecordCount(),
      requests: state.requestCount(),
    };
  },
};

interface MetadataRequest {
  spec: {
    typename: string;
    members: Record<string, string>;
    fields: Record<string, unknown>;
    labels: Record<string, string>;
    derivedFrom: ParentRef[];
  };
  seal: string[];
  /** Members whose bytes ride in the request: stored (withInlineMembers) before anything else. */
  inlineMembers: Record<string, Uint8Array>;
  name?: string;
  override: boolean;
  persist: boolean;
}

/** createMetadataMany once every request is parsed: checked as a whole, then all or none. */
function createMany(
  state: DaemonState,
  session: ClientSession,
  requests: MetadataRequest[],
): Pending<{ ids: string[] }> {
  check.distinctNames(
    'createMetadataMany',
    requests.map((request) => request.name),
  );
  // Inline members are stored first: the checks below may refer to them.
  return withInlineMembers(state, session, requests, () => {
    for (const request of requests) state.table.checkMetadata(session, request.spec, request.seal);
    return whenDone(createAndPublish(state, session, requests), (ids) => ({ ids }));
  });
}

interface SealRequest {
  id: string;
  hold: boolean;
  name: string | undefined;
  override: boolean;
  persist: boolean;
  labels: Record<string, string>;
  derivedFrom: ParentRef[];
}

/** Seals, once the parents are resolved; publishes when named or persisted. */
function sealWith(state: DaemonState, session: ClientSession, request: SealRequest): Pending<{ id: string }> {
  const { id, hold, name, override, persist, labels, derivedFrom } = request;
  if (name === undefined && !persist) {
    state.table.seal(session, id, hold, { labels, derivedFrom });
    return { id };
  }
  if (name !== undefined && !override) state.names.refuseTaken(name);
  state.meta.requireWritable(name === undefined ? `persist ${id}` : `publish name ${JSON.stringify(name)}`);
  state.table.seal(session, id, hold, { labels, derivedFrom });
  return whenDone(state.meta.publishNew(session, [{ id, name, override, persist }]), () => ({ id }));
}

/** Validates a createMetadata body; refuses a taken name up front, so a put is all or nothing. */
function parseMetadataRequest(kind: string, state: DaemonState, body: check.Body): MetadataRequest {
  const request: MetadataRequest = {
    spec: {
      typename: check.typename(kind, body),
      members: check.members(kind, body),
      fields: check.fields(kind, body),
      labels: check.labels(kind, body),
      derivedFrom: resolveParents(kind, check.parentRefs(kind, body), state.names, state.meta),
    },
    seal: check.optionalIds(kind, body, 'seal'),
    inlineMembers: check.inlineMembers(kind, body),
    name: optionalName(body),
    override: check.flag(kind, body, 'override', false),
    persist: check.flag(kind, body, 'persist', false),
  };
  for (const key of Object.keys(request.inlineMembers)) {
    if (Object.hasOwn(request.spec.members, key))
      throw new TrellisError('InvalidArgument', `${kind}: member ${JSON.stringify(key)} is given twice (also inline)`);
  }
  if (request.name !== undefined && !request.override) state.names.refuseTaken(request.name);
  return request;
}

/**
 * Stores the requests' inline members as blobs of this session, makes them members (sealed with
 * the object), then runs `create`; if anything fails, the stored blobs are taken back.
 */
function withInlineMembers<R>(
  state: DaemonState,
  session: ClientSession,
  requests: MetadataRequest[],
  create: () => R | Promise<R>,
): R | Promise<R> {
  const keys: Array<[MetadataRequest, string]> = [];
  for (const request of requests) for (const key of Object.keys(request.inlineMembers)) keys.push([request, key]);
  if (keys.length === 0) return create();
  const datas = keys.map(([request, key]) => request.inlineMembers[key]);
  // A promise that resolves to a promise is flattened: whenDone's nesting is only in the type.
  return whenDone(storeInline(state, session, datas), (ids) => {
    keys.forEach(([request, key], i) => {
      request.spec.members[key] = ids[i];
      request.seal.push(ids[i]);
    });
    const takeBack = (error: unknown): never => {
      abortInline(state, session, ids);
      throw error;
    };
    try {
      const result = create();
      return result instanceof Promise ? result.catch(takeBack) : result;
    } catch (error) {
      return takeBack(error);
    }
  }) as R | Promise<R>;
}

/** Creates the objects here, then publishes those named or persisted (all or none). */
function createAndPublish(
  state: DaemonState,
  session: ClientSession,
  requests: MetadataRequest[],
): string[] | Promise<string[]> {
  const published = requests.filter((request) => request.persist || request.name !== undefined).length;
  if (published > 0) state.meta.requireWritable(published === 1 ? 'publish an object' : `publish ${published} objects`);
  const ids = requests.map((request) => state.table.createMetadata(session, request.spec, request.seal).id);
  if (published === 0) return ids;
  const created: NewObject[] = requests.map((request, i) => ({
    id: ids[i],
    name: request.name,
    override: request.override,
    persist: request.persist,
  }));
  // All of them, so that a failure takes back the whole batch.
  return whenDone(state.meta.publishNew(session, created), () => ids);
}

/**
 * getObjects with `each`: every ref answered as its own getObject would be, so one that fails
 * (missing, not sealed, a name not there) fails alone: what a client's gets, coalesced into one
 * request, need. Plain blobs come in columns; failures in `errors`.
 */
function getEach(ctx: RequestContext, refs: string[]): GetObjectsReply | Promise<GetObjectsReply> {
  const answers: Array<GetObjectReply | WireError | Promise<GetObjectReply | WireError>> = refs.map((ref) => {
    try {
      const answer = handlers.getObject(ctx, { ref }) as GetObjectReply | Promise<GetObjectReply>;
      return answer instanceof Promise ? answer.catch(toWireError) : answer;
    } catch (error) {
      return toWireError(error);
    }
  });
  const reply = (settled: Array<GetObjectReply | WireError>) => {
    const found: GetObjectReply[] = [];
    const at: number[] = [];
    const errors = { at: [] as number[], errors: [] as WireError[] };
    settled.forEach((answer, i) => {
      if (isWireError(answer)) {
        errors.at.push(i);
        errors.errors.push(answer);
      } else {
        found.push(answer);
        at.push(i);
      }
    });
    const columns = toColumns(found, ctx.state.instanceId, at);
    return errors.at.length === 0 ? columns : { ...columns, errors };
  };
  const pending = answers.some((answer) => answer instanceof Promise);
  return pending ? Promise.all(answers).then(reply) : reply(answers as Array<GetObjectReply | WireError>);
}

/** A local object's tree, with references to its blobs for this client (loaded first if on disk). */
function describeLocal(ctx: RequestContext, id: string): ReplyOf<'getObject'> | Promise<ReplyOf<'getObject'>> {
  const { table, residency } = ctx.state;
  return residency.withResident(
    () => table.blobsOf(id),
    () => describeAndGrant(ctx, id),
  );
}

/** A resident local object's reply, its segments granted to the client. */
function describeAndGrant(ctx: RequestContext, id: string): ReplyOf<'getObject'> {
  const described = ctx.state.table.describe(ctx.session, id);
  for (const blob of described.blobs) ctx.grant(blob.segment);
  return described;
}

/** persist's ttl in seconds, or undefined. Errors: InvalidArgument. */
function optionalTtl(body: check.Body): number | undefined {
  const ttl = body.ttl;
  if (ttl === undefined || ttl === null) return undefined;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0 || ttl > MAX_TTL_SECONDS) {
    throw new TrellisError(
      'InvalidArgument',
      `persist: ttl must be a number of seconds above 0 and at most ${MAX_TTL_SECONDS}, got ${check.describe(ttl)}`,
    );
  }
  return ttl;
}

/** A version number (1, 2, ...), or undefined. Errors: InvalidArgument. */
function optionalVersion(kind: string, body: check.Body): number | undefined {
  const version = body.version;
  if (version === undefined || version === null) return undefined;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    const got = check.describe(version);
    throw new TrellisError('InvalidArgument', `${kind}: version must be an integer of 1 or more, got ${got}`);
  }
  return version;
}

function optionalName(body: check.Body): string | undefined {
  return body.name === undefined || body.name === null ? undefined : checkName(body.name);
}

export function isClientKind(kind: unknown): kind is ClientKind {
  return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(handlers, kind);
}

/** writeChunk's `more`: the chunks after the first, in order. Errors: InvalidArgument. */
function chunkAppends(body: check.Body): Array<{ chunk: string; seal: string[] }> {
  const more = body.more;
  if (more === undefined || more === null) return [];
  if (!Array.isArray(more) || more.length > check.MAX_IDS_PER_REQUEST) {
    throw new TrellisError(
      'InvalidArgument',
      `writeChunk: more must be a list of at most ${check.MAX_IDS_PER_REQUEST} chunks, got ${check.describe(more)}`,
    );
  }
  return more.map((append) => {
    const fields = check.expectBody('writeChunk', append);
    return {
      chunk: check.objectId('writeChunk', fields, 'chunk'),
      seal: check.optionalIds('writeChunk', fields, 'seal'),
    };
  });
}
