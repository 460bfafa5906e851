/**
 * What a request handler sees: the daemon's parts and the client's session. A leaf module, so
 * that dispatch, the connections and rpc/ can all name these types without importing each other.
 */
import type { ArchiveIndex } from './archive-index';
import type { MetaService } from './metadata/meta-service';
import type { NameTable } from './names';
import type { PutRings } from './put-rings';
import type { ReadIndex } from './read-index';
import type { ObjectTable } from './object-table';
import type { Residency } from './residency';
import type { RemoteObjects } from './rpc/remote-objects';
import type { SegmentPool } from './segment-pool';
import type { ClientSession } from './session';
import type { StreamTable } from './streams';

export interface DaemonState {
  readonly table: ObjectTable;
  readonly names: NameTable;
  readonly streams: StreamTable;
  readonly pool: SegmentPool;
  /** Which blobs are in memory; spills and loads them (residency.ts). */
  readonly residency: Residency;
  /** Where published objects and names are kept: chosen once at start (metadata/meta-service.ts). */
  readonly meta: MetaService;
  /** Objects on other instances: migrate and putGlobal (rpc/remote-objects.ts). */
  readonly remote: RemoteObjects;
  /** topHash -> the object holding that content (archives). */
  readonly archives: ArchiveIndex;
  /** Small sealed objects clients read without a round trip (read-index.ts); undefined when off. */
  readonly readIndex?: ReadIndex;
  /** Local clients' small puts, written into shared memory with no round trip (put-rings.ts). */
  readonly putRings: PutRings;
  readonly instanceId: number;
  readonly socketPath: string;
  readonly version: string;
  clientCount(): number;
  requestCount(): number;
}

export interface RequestContext {
  readonly state: DaemonState;
  readonly session: ClientSession;
  /** True for a local client, which maps segments; RPC sessions are sent bytes instead. */
  readonly mapsSegments?: boolean;
  /** Sends the segment's fd to this client unless it already has it. */
  grant(segment: number): void;
  /**
   * Undefined once the client's fd channel is attached; until then a promise for it. The first
   * request that needs fds can overtake the channel's attach frame, which comes on another socket.
   */
  untilFdChannel(): Promise<void> | undefined;
}
