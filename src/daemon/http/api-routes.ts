/**
 * GET /api/status, /api/objects, /api/names, /api/instances (and /api/streams): the dashboard's
 * data as JSON. Objects and names are paged: `?offset=0&limit=100&pattern=GLOB` (the pattern
 * matches the typename for objects, the name for names; limit at most 1000).
 */
import { isTrellisError } from '../../errors';
import type { DaemonView, PageQuery } from './daemon-view';

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** The answer for an /api path, or undefined when there is no such route. */
export async function answerApi(
  view: DaemonView,
  path: string,
  query: URLSearchParams,
): Promise<ApiAnswer | undefined> {
  try {
    // What the dashboard shows includes every put local clients have resolved (put-rings.ts).
    view.drainPutRings();
    switch (path) {
      case '/api/status':
        return { status: 200, body: view.status() };
      case '/api/objects':
        return { status: 200, body: await view.objects(pageQuery(query)) };
      case '/api/names':
        return { status: 200, body: await view.names(pageQuery(query)) };
      case '/api/instances':
        return { status: 200, body: view.instances() };
      case '/api/streams':
        return { status: 200, body: view.streams(Number(query.get('limit') ?? 100) || 100) };
      default:
        return undefined;
    }
  } catch (error) {
    if (isTrellisError(error, 'InvalidArgument'))
      return { status: 400, body: { error: { code: error.code, message: error.message } } };
    if (isTrellisError(error, 'Unavailable'))
      return { status: 503, body: { error: { code: error.code, message: error.message } } };
    throw error;
  }
}

function pageQuery(query: URLSearchParams): PageQuery {
  const number = (key: string) => {
    const text = query.get(key);
    return text === null || !/^\d+$/.test(text) ? undefined : Number(text);
  };
  return { pattern: query.get('pattern') ?? undefined, offset: number('offset'), limit: number('limit') };
}
