/**
 * The daemon's HTTP port (--http-port): the dashboard page and its files, /live (WebSocket),
 * /metrics (Prometheus) and /api/* (JSON). GET only; with --rpc-token everything but /metrics
 * asks for the token (auth.ts). It reads the daemon only through DaemonView, which asks the same
 * handlers clients do.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { TrellisError } from '../../errors';
import { daemonLog } from '../log';
import type { DaemonState } from '../request-context';
import type { RequestStats } from '../request-stats';
import { formatEndpoint } from '../rpc/rpc-server';
import { answerApi } from './api-routes';
import { crossOrigin, TokenCheck } from './auth';
import { DaemonView } from './daemon-view';
import { LiveFeed } from './live';
import { DaemonMetrics } from './metrics';
import { StaticFiles } from './static-files';

/** What the HTTP port needs from the daemon. */
export interface HttpHost {
  readonly state: DaemonState;
  readonly requestStats: RequestStats;
}

export interface HttpOptions {
  port: number;
  host: string;
  token?: string;
}

export class HttpServer {
  private readonly view: DaemonView;
  private readonly metrics: DaemonMetrics;
  private readonly live: LiveFeed;
  private readonly files = new StaticFiles();
  private auth!: TokenCheck;

  private constructor(
    host: HttpHost,
    private readonly server: http.Server,
  ) {
    this.view = new DaemonView(host.state);
    this.metrics = new DaemonMetrics(this.view, host.requestStats);
    this.live = new LiveFeed(this.view);
  }

  /** Listens on host:port (0 picks one). Errors: Conflict (port taken), InvalidArgument (a host it cannot bind). */
  static async start(host: HttpHost, options: HttpOptions): Promise<HttpServer> {
    const server = http.createServer();
    const http_ = new HttpServer(host, server);
    server.on('request', (request, response) => http_.handle(request, response));
    server.on('upgrade', (request, socket, head) => http_.upgrade(request, socket, head));
    server.on('clientError', (_error, socket) => socket.destroy());
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      http_.live.close();
      const where = formatEndpoint(options.host, options.port);
      const { code, message } = error as NodeJS.ErrnoException;
      throw new TrellisError(
        code === 'EADDRINUSE' ? 'Conflict' : 'InvalidArgument',
        `cannot serve HTTP on ${where}: ${code ?? message}`,
        { cause: error },
      );
    }
    http_.auth = new TokenCheck(options.token, (server.address() as AddressInfo).port);
    return http_;
  }

  /** host:port it listens on. */
  get endpoint(): string {
    const address = this.server.address() as AddressInfo;
    return formatEndpoint(address.address, address.port);
  }

  async close(): Promise<void> {
    this.live.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://trellisd');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(response, 405, 'text/plain; charset=utf-8', 'only GET\n', { allow: 'GET, HEAD' });
      return;
    }
    if (url.pathname === '/metrics') {
      // As /api: the figures include every put local clients have resolved (put-rings.ts).
      this.view.drainPutRings();
      this.metrics.text().then(
        (text) => send(response, 200, this.metrics.contentType, text),
        (error: Error) => send(response, 500, 'text/plain; charset=utf-8', `${error.message}\n`),
      );
      return;
    }
    if (!this.auth.admits(request, url)) {
      send(
        response,
        401,
        'text/plain; charset=utf-8',
        'this daemon asks for its token: Authorization: Bearer TOKEN, or ?token=TOKEN\n',
        {
          'www-authenticate': 'Bearer realm="trellisd"',
        },
      );
      return;
    }
    if (url.pathname.startsWith('/api/')) {
      answerApi(this.view, url.pathname, url.searchParams).then(
        (answer) => {
          if (answer) send(response, answer.status, 'application/json', JSON.stringify(answer.body));
          else notFound(response, url.pathname);
        },
        (error: Error) => {
          daemonLog().error({ path: url.pathname }, `HTTP ${url.pathname} failed: ${error.message}`);
          send(
            response,
            500,
            'application/json',
            JSON.stringify({ error: { code: 'Internal', message: error.message } }),
          );
        },
      );
      return;
    }
    const file = this.files.get(url.pathname);
    if (!file) {
      notFound(response, url.pathname);
      return;
    }
    const cookie = url.pathname === '/' ? this.auth.cookieFor(url) : undefined;
    send(response, 200, file.type, file.body, cookie ? { 'set-cookie': cookie } : {});
  }

  private upgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'http://trellisd');
    const refuse = (status: number, reason: string) => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    if (url.pathname !== '/live') return refuse(404, 'Not Found');
    if (crossOrigin(request)) return refuse(403, 'Forbidden');
    if (!this.auth.admits(request, url)) return refuse(401, 'Unauthorized');
    this.live.accept(request, socket, head);
  }
}

function notFound(response: http.ServerResponse, path: string): void {
  send(response, 404, 'text/plain; charset=utf-8', `no such page: ${path}\n`);
}

function send(
  response: http.ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
