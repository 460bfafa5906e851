/**
 * Client methods the command line uses before every build of trellis has them (lineage and
 * label land separately). This is the one place that checks for them: once they are part of
 * TrellisClient for good, call the methods directly and drop them from here.
 */
import type { TrellisClient } from '../connect';
import { TrellisError } from '../errors';

export interface LineageEntry {
  depth: number;
  id: string;
  typename: string;
  name?: string;
  version?: number;
  missing: boolean;
}

/** The shapes the command line expects of them. */
export interface OptionalClientMethods {
  lineage(idOrName: string, options?: { maxDepth?: number }): Promise<LineageEntry[]>;
  /** Merges labels into a sealed object (null removes one). */
  label(idOrName: string, labels: Record<string, string | null>): Promise<unknown>;
}

/** Whether this client has the method (for a fallback rather than an error). */
export function hasOptionalMethod(client: TrellisClient, method: keyof OptionalClientMethods): boolean {
  return typeof (client as unknown as Partial<OptionalClientMethods>)[method] === 'function';
}

/**
 * The method bound to the client. Errors: InvalidArgument when this client has no such method
 * (`command` names the subcommand in the message).
 */
export function optionalMethod<K extends keyof OptionalClientMethods>(
  client: TrellisClient,
  method: K,
  command: string,
): OptionalClientMethods[K] {
  const found = (client as unknown as Partial<OptionalClientMethods>)[method];
  if (!hasOptionalMethod(client, method)) {
    throw new TrellisError('InvalidArgument', `${command} is not available in this version of the daemon/client`);
  }
  return (found as (...args: unknown[]) => unknown).bind(client) as OptionalClientMethods[K];
}
