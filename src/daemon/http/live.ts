/**
 * /live: the dashboard's WebSocket. Every second each open page gets a snapshot: the status, a
 * memory sample for the chart, the instances, and the page of objects, names and streams it is
 * looking at. A page says which page it wants (`{ objects: { offset, limit, pattern }, names:
 * {...} }`) and gets a snapshot at once. A snapshot is bounded (a page is at most
 * MAX_PAGE_SIZE rows), whatever the number of objects.
 *
 * The memory history (the last ten minutes, one sample a second) is kept while the HTTP port
 * is open, so a page opened late still draws a chart; a new page gets it whole, then a sample
 * with each snapshot.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { DaemonView, PageQuery } from './daemon-view';

export const LIVE_INTERVAL_MS = 1000;
const HISTORY_SAMPLES = 600;
/** A page that does not keep up is skipped until it has read this much. */
const MAX_BUFFERED_BYTES = 1 << 20;

export interface MemorySample {
  /** Milliseconds since the epoch. */
  t: number;
  used: number;
  limit: number;
  capacity: number;
  spilled: number;
}

interface PageState {
  objects: PageQuery;
  names: PageQuery;
}

export class LiveFeed {
  private readonly server = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly pages = new Map<WebSocket, PageState>();
  /** Pages whose snapshot is being made. */
  private readonly sending = new Set<WebSocket>();
  private readonly history: MemorySample[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly view: DaemonView) {
    this.sample();
    this.timer = setInterval(() => this.tick(), LIVE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Takes over an upgrade request the HTTP server has already checked. */
  accept(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.server.handleUpgrade(request, socket, head, (ws) => {
      const state: PageState = { objects: { offset: 0, limit: 100 }, names: { offset: 0, limit: 100 } };
      this.pages.set(ws, state);
      ws.on('message', (data) => {
        this.follow(state, data.toString());
        this.send(ws, state);
      });
      ws.on('close', () => this.pages.delete(ws));
      ws.on('error', () => ws.terminate());
      ws.send(JSON.stringify({ type: 'history', samples: this.history }));
      this.send(ws, state);
    });
  }

  close(): void {
    clearInterval(this.timer);
    for (const ws of this.pages.keys()) ws.terminate();
    this.server.close();
  }

  private tick(): void {
    this.sample();
    for (const [ws, state] of this.pages) this.send(ws, state);
  }

  private sample(): void {
    // As every other observer: the figures include every put local clients have resolved (put-rings.ts).
    this.view.drainPutRings();
    const status = this.view.status();
    this.history.push({
      t: Date.now(),
      used: status.memoryUsage,
      limit: status.memoryLimit,
      capacity: status.memoryCapacity,
      spilled: status.spilled.bytes,
    });
    if (this.history.length > HISTORY_SAMPLES) this.history.shift();
  }

  /** A page's request for other pages of objects or names; anything malformed is ignored. */
  private follow(state: PageState, text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    const { objects, names } = message as { objects?: unknown; names?: unknown };
    if (objects !== undefined) state.objects = pageQuery(objects);
    if (names !== undefined) state.names = pageQuery(names);
  }

  private send(ws: WebSocket, state: PageState): void {
    if (ws.readyState !== ws.OPEN || ws.bufferedAmount > MAX_BUFFERED_BYTES || this.sending.has(ws)) return;
    // One snapshot at a time per page: a cluster's pages wait on etcd reads.
    this.sending.add(ws);
    void this.snapshot(state)
      .then((snapshot) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(snapshot));
      })
      .finally(() => this.sending.delete(ws));
  }

  private async snapshot(state: PageState): Promise<object> {
    // A page opened (or paged) right after a put must list it, as /api does.
    this.view.drainPutRings();
    const status = this.view.status();
    const errors: string[] = [];
    const attempt = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await read();
      } catch (error) {
        errors.push((error as Error).message);
        return undefined;
      }
    };
    const [objects, names] = await Promise.all([
      attempt(() => this.view.objects(state.objects)),
      attempt(() => this.view.names(state.names)),
    ]);
    return {
      type: 'snapshot',
      at: Date.now(),
      status,
      sample: this.history[this.history.length - 1],
      cluster: this.view.instances(),
      objects,
      names,
      streams: this.view.streams(),
      errors,
    };
  }
}

function pageQuery(value: unknown): PageQuery {
  if (typeof value !== 'object' || value === null) return {};
  const { offset, limit, pattern } = value as Record<string, unknown>;
  return {
    offset: typeof offset === 'number' && Number.isFinite(offset) ? offset : undefined,
    limit: typeof limit === 'number' && Number.isFinite(limit) ? limit : undefined,
    pattern: typeof pattern === 'string' && pattern !== '' ? pattern.slice(0, 256) : undefined,
  };
}
