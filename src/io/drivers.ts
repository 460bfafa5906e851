/**
 * Drivers open URLs as streams, keyed by URL scheme (`file:` is built in). A driver gets the
 * parsed URL and the caller's options, and returns what `open` returns.
 */
import { TrellisError } from '../errors';

export interface Driver {
  open(url: URL, options: Record<string, unknown>): Promise<unknown>;
}

const drivers = new Map<string, Driver>();

/** `scheme` without the colon, such as 'file' or 's3'. */
export function registerDriver(scheme: string, driver: Driver): void {
  if (!/^[a-z][a-z0-9+.-]*$/.test(scheme))
    throw new TrellisError('InvalidArgument', `invalid URL scheme ${JSON.stringify(scheme)}`);
  drivers.set(scheme, driver);
}

/** Errors: InvalidArgument for a URL that does not parse or a scheme no driver takes. */
export function driverFor(url: string): { driver: Driver; parsed: URL } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new TrellisError(
      'InvalidArgument',
      `cannot parse URL ${JSON.stringify(url)}: use a URL such as file:///data/edges.e`,
      { cause: error },
    );
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  const driver = drivers.get(scheme);
  if (!driver) {
    throw new TrellisError(
      'InvalidArgument',
      `no driver for URL scheme "${scheme}:" in ${url}; known: ${[...drivers.keys()].map((s) => s + ':').join(', ')}`,
    );
  }
  return { driver, parsed };
}
