/**
 * What the HTTP side reads from the daemon, in the shapes /api and the dashboard send. Status,
 * objects, names and instances come from the same handlers that answer clients (dispatch.ts), so
 * a page and `client.status()` never disagree; this file only pages them and adds each object's
 * names and labels.
 *
 * Listing objects sorts all of them, so a listing is reused until something could have changed
 * it (a request, a client gone) or a few seconds pass: a dashboard open on 10,000 objects costs
 * one sort a tick at most, and none on an idle daemon.
 */
import type { ClusterInfoReply, DaemonStatus, ListNamesReply, ObjectSummary } from '../../protocol/messages';
import { handlers } from '../dispatch';
import { afterNameReads } from '../name-reads';
import type { ReadIndexCounts } from '../read-index';
import type { DaemonState, RequestContext } from '../request-context';
import type { SpareStates } from '../segment-pool';
import { newSession } from '../session';
import type { StreamSummary } from '../streams';

export const MAX_PAGE_SIZE = 1000;
const LISTING_REUSE_MS = 5000;

export interface ObjectRow {
  id: string;
  typename: string;
  nbytes: number;
  /** Milliseconds since the epoch. */
  createdAt: number;
  names: string[];
  labels: Record<string, string>;
}

export interface Page {
  /** Items that match, over all pages. */
  total: number;
  offset: number;
  limit: number;
}

export interface ObjectPage extends Page {
  objects: ObjectRow[];
}

export interface NamePage extends Page {
  names: Array<{ name: string; id: string | null }>;
}

export interface PageQuery {
  /** A glob: over the typename for objects, over the name for names. */
  pattern?: string;
  offset?: number;
  limit?: number;
}

export class DaemonView {
  /** The handlers read only `state`; the session is never registered anywhere. */
  private readonly ctx: RequestContext;
  private listing?: { pattern: string | undefined; generation: string; at: number; objects: ObjectSummary[] };

  constructor(private readonly state: DaemonState) {
    this.ctx = {
      state,
      session: newSession(0, process.pid, -1),
      grant: () => undefined,
      untilFdChannel: () => undefined,
    };
  }

  drainPutRings(): void {
    this.state.putRings.drainAll();
  }

  status(): DaemonStatus {
    return handlers.status(this.ctx, {}) as DaemonStatus;
  }

  /** The spare segment (--spare-segment) by state, in bytes; all 0 without one. */
  spareSegment(): SpareStates {
    return this.state.pool.spareStates;
  }

  /** The read index's slots and entries (read-index.ts), or undefined when it is off. */
  readIndex(): ReadIndexCounts | undefined {
    return this.state.readIndex?.counts;
  }

  /** The cluster's instances as this daemon sees them (just itself without --etcd). */
  instances(): ClusterInfoReply {
    return handlers.clusterInfo(this.ctx, {}) as ClusterInfoReply;
  }

  /**
   * Newest first. Errors: InvalidArgument for a bad pattern, Unavailable (a cluster's etcd, or a
   * cluster daemon that cannot vouch for the names it would show).
   */
  async objects(query: PageQuery = {}): Promise<ObjectPage> {
    // Each row shows the object's names, read from memory: not from a view this daemon cannot
    // vouch for, as for /api/names and its clients (name-reads.ts).
    const page = async (): Promise<ObjectPage> => {
      const all = await this.listObjects(query.pattern);
      const { offset, limit } = pageBounds(query);
      const objects = all.slice(offset, offset + limit).map((summary) => this.row(summary));
      return { total: all.length, offset, limit, objects };
    };
    return (await afterNameReads(this.state.meta, 'listNames', {}, page)) as ObjectPage;
  }

  /**
   * Sorted by name; in a cluster, every instance's (read from etcd, and the page's names then
   * held to show their ids). Errors: InvalidArgument for a bad pattern, Unavailable.
   */
  async names(query: PageQuery = {}): Promise<NamePage> {
    const body = query.pattern === undefined ? {} : { pattern: query.pattern };
    // Not from a view this daemon cannot vouch for, as for its clients (name-reads.ts).
    const listed = afterNameReads(this.state.meta, 'listNames', body, () => handlers.listNames(this.ctx, body));
    const all = ((await listed) as ListNamesReply).names;
    const { offset, limit } = pageBounds(query);
    const page = all.slice(offset, offset + limit);
    await this.state.meta.loadNames(page);
    return { total: all.length, offset, limit, names: page.map((name) => ({ name, id: this.idOf(name) })) };
  }

  streams(limit = 100): { total: number; streams: StreamSummary[] } {
    return { total: this.state.streams.size, streams: this.state.streams.list(limit) };
  }

  private async listObjects(pattern: string | undefined): Promise<ObjectSummary[]> {
    const { state } = this;
    // Put ring records change the table with no request (docs/put-ring.md).
    const generation = `${state.requestCount()}/${state.putRings.recordsTaken}/${state.clientCount()}/${state.table.size}`;
    const now = Date.now();
    const last = this.listing;
    if (last && last.pattern === pattern && last.generation === generation && now - last.at < LISTING_REUSE_MS)
      return last.objects;
    const body =
      pattern === undefined ? { limit: Number.MAX_SAFE_INTEGER } : { pattern, limit: Number.MAX_SAFE_INTEGER };
    const { objects } = await handlers.listObjects(this.ctx, body);
    this.listing = { pattern, generation, at: now, objects };
    return objects;
  }

  private row(summary: ObjectSummary): ObjectRow {
    // Objects of other instances (in a cluster listing) are not in this table: no names or labels here.
    const stored = this.state.table.sealedObjectOrUndefined(summary.id);
    return {
      id: summary.id,
      typename: summary.typename,
      nbytes: summary.nbytes,
      createdAt: summary.createdAt,
      names: stored ? [...stored.names].sort() : [],
      labels: stored ? stored.labels : {},
    };
  }

  private idOf(name: string): string | null {
    try {
      return this.state.names.resolve(name);
    } catch {
      return null;
    }
  }
}

function pageBounds(query: PageQuery): { offset: number; limit: number } {
  const offset = Math.max(0, Math.floor(query.offset ?? 0));
  const limit = Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(query.limit ?? 100)));
  return { offset, limit };
}
