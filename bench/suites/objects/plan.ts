/**
 * How much the objects suite measures. The 1 GiB loads dominate: a Redis GET of 1 GiB takes
 * seconds over loopback and readFileSync about half a second, so those get a handful of
 * samples; trellis gets and small puts take tens of microseconds and get hundreds.
 *
 * Memory at the peak stays near 6 GiB: the table in trellis (1 GiB), the IPC file in /dev/shm
 * (1 GiB), Redis's copy (1 GiB, plus its query buffer while the SET arrives), and the writer
 * holding the table and its IPC encoding (2 GiB) until it exits; each reader then loads one
 * table at a time (up to 2 GiB for the Redis reader while a reply is assembled).
 */
import { GiB, KiB } from '../../lib/format';

export interface ObjectsPlan {
  /** Room for the table and the small values, with slack for segment rounding. */
  daemonSize: string;
  /** Bytes of column data in the DataFrame (four 8-byte columns). */
  tableBytes: number;
  /** Encoded size of the small trellis::Value the DataFrame get is compared with. */
  valueBytes: number;
  /** Redis is asked to accept values this large (proto-max-bulk-len). */
  redisMaxValueBytes: number;
  /** Gets by a fresh reader; value and table alternate `rounds` times. */
  trellisGets: {
    value: { iterations: number; warmup: number };
    table: { iterations: number; warmup: number };
    rounds: number;
  };
  fileLoads: { iterations: number; warmup: number };
  redisLoads: { iterations: number; warmup: number };
  /** Encoded sizes of the values whose put rate is measured. */
  putValueBytes: number[];
  putRate: {
    single: { iterations: number; warmup: number; opsPerSample: number };
    batch: { iterations: number; warmup: number; batchSize: number };
    rounds: number;
  };
  roundTrip: { messageBytes: number; iterations: number; warmup: number };
}

export const OBJECTS_PLAN: ObjectsPlan = {
  daemonSize: '3GiB',
  tableBytes: GiB,
  valueBytes: KiB,
  redisMaxValueBytes: 2 * GiB,
  trellisGets: { value: { iterations: 500, warmup: 50 }, table: { iterations: 300, warmup: 30 }, rounds: 2 },
  fileLoads: { iterations: 4, warmup: 1 },
  redisLoads: { iterations: 3, warmup: 1 },
  putValueBytes: [128, KiB],
  putRate: {
    single: { iterations: 30, warmup: 3, opsPerSample: 50 },
    batch: { iterations: 20, warmup: 2, batchSize: 1000 },
    rounds: 3,
  },
  roundTrip: { messageBytes: 32, iterations: 2000, warmup: 200 },
};
