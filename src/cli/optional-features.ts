/**
 * Client methods the command line uses before every build of trellis has them (archives and
 * versions land separately). This is the one place that checks for them: once they are part
 * of TrellisClient for good, call the methods directly and delete this file.
 */
import type { TrellisClient } from '../connect';
import { TrellisError } from '../errors';

/** As API.md's onProgress. */
export interface ArchiveProgress {
  bytesDone: number;
  bytesTotal: number;
}

export interface VersionEntry {
  version: number;
  id: string;
  createdAt: number;
}

/** The shapes the command line expects of them. */
export interface OptionalClientMethods {
  exportArchive(
    idOrName: string,
    path: string,
    options?: { onProgress?: (progress: ArchiveProgress) => void },
  ): Promise<{ topHash: string; bytes: number }>;
  importArchive(
    path: string,
    options?: { name?: string; override?: boolean; onProgress?: (progress: ArchiveProgress) => void },
  ): Promise<{ id: string; topHash: string; existed: boolean }>;
  versions(name: string): Promise<VersionEntry[]>;
}

/**
 * The method bound to the client. Errors: InvalidArgument when this client has no such method
 * (`command` names the subcommand in the message).
 */
/** Whether this client has the method (for a fallback rather than an error). */
export function hasOptionalMethod(client: TrellisClient, method: keyof OptionalClientMethods): boolean {
  return typeof (client as unknown as Partial<OptionalClientMethods>)[method] === 'function';
}

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
