/**
 * The dashboard's files, served by the daemon itself (no CDN): the page from dashboard/ at the
 * package root, and uPlot's browser build from node_modules. Read once, on first request, and
 * kept: a handful of small files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** dashboard/ sits at the package root: three levels up from src/daemon/http and dist/daemon/http. */
const DASHBOARD_DIR = path.join(__dirname, '..', '..', '..', 'dashboard');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

export interface StaticFile {
  body: Buffer;
  type: string;
}

export class StaticFiles {
  private readonly files = new Map<string, string>();
  private readonly cache = new Map<string, StaticFile>();

  constructor() {
    this.files.set('/', path.join(DASHBOARD_DIR, 'index.html'));
    for (const name of ['app.js', 'style.css']) this.files.set(`/dashboard/${name}`, path.join(DASHBOARD_DIR, name));
    const uplot = path.join(path.dirname(require.resolve('uplot/package.json')), 'dist');
    this.files.set('/vendor/uPlot.iife.min.js', path.join(uplot, 'uPlot.iife.min.js'));
    this.files.set('/vendor/uPlot.min.css', path.join(uplot, 'uPlot.min.css'));
  }

  /** The file served at `urlPath`, or undefined when there is none. */
  get(urlPath: string): StaticFile | undefined {
    const cached = this.cache.get(urlPath);
    if (cached) return cached;
    const file = this.files.get(urlPath);
    if (!file) return undefined;
    const loaded = { body: fs.readFileSync(file), type: TYPES[path.extname(file)] ?? 'application/octet-stream' };
    this.cache.set(urlPath, loaded);
    return loaded;
  }
}
