/**
 * Reads a Prometheus text endpoint (etcd's /metrics, a daemon's /metrics) into numbers: each
 * metric's samples summed over their labels, or only those whose labels pass a filter.
 */
import * as http from 'node:http';

const SCRAPE_TIMEOUT_MS = 5_000;

export function httpGet(hostPort: string, urlPath: string): Promise<{ status: number; body: string }> {
  const [host, port] = splitHostPort(hostPort);
  return new Promise((resolve, reject) => {
    const request = http.get({ host, port, path: urlPath, timeout: SCRAPE_TIMEOUT_MS }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${hostPort}${urlPath} timed out`)));
    request.on('error', reject);
  });
}

function splitHostPort(hostPort: string): [string, number] {
  const bare = hostPort.replace(/^https?:\/\//, '');
  const colon = bare.lastIndexOf(':');
  return [bare.slice(0, colon).replace(/^\[|\]$/g, ''), Number(bare.slice(colon + 1))];
}

/** One scrape: metric name -> the sum of its samples whose label text passes `labels`. */
export class Scrape {
  constructor(private readonly text: string) {}

  sum(metric: string, labels: (labelText: string) => boolean = () => true): number {
    let total = 0;
    for (const line of this.text.split('\n')) {
      if (!line.startsWith(metric)) continue;
      const rest = line.slice(metric.length);
      if (rest[0] !== ' ' && rest[0] !== '{') continue;
      const labelText = rest[0] === '{' ? rest.slice(1, rest.indexOf('}')) : '';
      if (labels(labelText)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return total;
  }
}

export async function scrape(hostPort: string): Promise<Scrape> {
  const { status, body } = await httpGet(hostPort, '/metrics');
  if (status !== 200) throw new Error(`GET ${hostPort}/metrics answered ${status}`);
  return new Scrape(body);
}
