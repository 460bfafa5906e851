/**
 * The narrow port through which rpc/ (migrate, putGlobal) reaches this daemon's own store. It
 * names only what copying objects needs, so rpc/ never depends on the request handlers.
 */
import type { NameTable } from '../names';
import type { ObjectTable } from '../object-table';
import type { SegmentPool } from '../segment-pool';
import type { ClientSession } from '../session';

export interface LocalStore {
  readonly table: ObjectTable;
  readonly names: NameTable;
  readonly pool: SegmentPool;
  readonly instanceId: number;
  /** A session for a daemon job, counted as a client until closed. */
  openSession(pid: number): ClientSession;
  /** Reclaims what the session had, as for a local client that disconnects. */
  closeSession(session: ClientSession): void;
}
