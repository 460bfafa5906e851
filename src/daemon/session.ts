/** What the daemon keeps for one registered client. */
export interface ClientSession {
  readonly clientId: number;
  readonly pid: number;
  /** Its process's start time, read when it registered (process-instance.ts); undefined if unreadable. */
  readonly startTime?: string;
  readonly uid: number;
  /** Sealed objects this client holds a reference to (from a get or its own seal). */
  readonly held: Set<string>;
  /** Blobs this client created and has not sealed or aborted yet. */
  readonly unsealed: Set<string>;
  /** Segments whose fd this client has been sent. */
  readonly grantedSegments: Set<number>;
  /** Segments released since the last reply, to tell the client about. */
  readonly droppedSegments: number[];
  /**
   * Set when the client is gone and its session dropped. A request that was still waiting then
   * (for a new segment, a load from disk) must not give it blobs or references nobody will free.
   */
  closed: boolean;
  /**
   * Set when the daemon closed the connection (a protocol violation) while the client may still
   * run: shared memory it could write (its put ring) stays out of use until its process is gone.
   */
  evicted: boolean;
}

export function newSession(clientId: number, pid: number, uid: number, startTime?: string): ClientSession {
  return {
    clientId,
    pid,
    startTime,
    uid,
    held: new Set(),
    unsealed: new Set(),
    grantedSegments: new Set(),
    droppedSegments: [],
    closed: false,
    evicted: false,
  };
}
