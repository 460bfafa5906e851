/**
 * The HTTP port's one check: with --rpc-token, a request must carry the token, as
 * `Authorization: Bearer T`, as `?token=T` (a link to the page, the page's WebSocket), or in the
 * cookie the page sets once opened with the token, so that its scripts and styles load too.
 *
 * The comparison takes the same time whatever the guess (both sides hashed, then compared with
 * timingSafeEqual). A browser WebSocket from another site's page is refused by its Origin, since
 * browsers send cookies with those too.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export class TokenCheck {
  private readonly digest?: Buffer;
  /** Per port: two daemons on one host must not overwrite each other's cookie. */
  readonly cookieName: string;

  constructor(token: string | undefined, port: number) {
    this.digest = token === undefined ? undefined : sha256(token);
    this.cookieName = `trellis_token_${port}`;
  }

  get required(): boolean {
    return this.digest !== undefined;
  }

  /** Whether the request may go on; `url` is the request's parsed URL. */
  admits(request: IncomingMessage, url: URL): boolean {
    if (!this.digest) return true;
    const candidates = [bearer(request), url.searchParams.get('token') ?? undefined, this.cookie(request)];
    return candidates.some((candidate) => candidate !== undefined && timingSafeEqual(sha256(candidate), this.digest!));
  }

  /** A Set-Cookie value that carries the token for the page's own later requests. */
  cookieFor(url: URL): string | undefined {
    const token = url.searchParams.get('token');
    if (!this.digest || token === null) return undefined;
    return `${this.cookieName}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
  }

  private cookie(request: IncomingMessage): string | undefined {
    const header = request.headers.cookie;
    if (!header) return undefined;
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === this.cookieName) return safeDecode(part.slice(eq + 1).trim());
    }
    return undefined;
  }
}

/** A browser's WebSocket from a page of another origin: no Origin (not a browser) is fine. */
export function crossOrigin(request: IncomingMessage): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== request.headers.host;
  } catch {
    return true;
  }
}

function bearer(request: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
  return match ? match[1].trim() : undefined;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
