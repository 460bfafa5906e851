/**
 * Writes many keys in as few etcd transactions as etcd allows. etcd refuses a transaction with
 * more than `--max-txn-ops` operations (128 by default: "too many operations in txn request"),
 * so a large write is cut into transactions of at most that many, committed in order.
 *
 * Each transaction is atomic; the whole is not. A caller that needs all-or-none must stay
 * within one transaction (at most 128 operations), or write operations that are safe to repeat
 * and repeat them when this throws. The error says how many transactions went through.
 */
import { TrellisError } from '../../errors';
import type { EtcdConnection } from './etcd-connection';

/** etcd's default `--max-txn-ops`. */
export const MAX_OPERATIONS_PER_TRANSACTION = 128;

export type TransactionOperation =
  | { readonly kind: 'put'; readonly key: string; readonly value: string | Buffer; readonly leaseId?: string }
  | { readonly kind: 'delete'; readonly key: string };

export interface BatchResult {
  /** Transactions committed. */
  transactions: number;
  /** etcd's revision after the last one ('0' when there was nothing to do). */
  revision: string;
}

/** Splits `items` into consecutive slices of at most `size`. */
export function splitIntoBatches<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1)
    throw new TrellisError('InvalidArgument', `batch size must be a positive integer, got ${size}`);
  const batches: T[][] = [];
  for (let start = 0; start < items.length; start += size) batches.push(items.slice(start, start + size));
  return batches;
}

/**
 * Commits `operations` (keys relative to the cluster prefix) in transactions of at most
 * `maxOperations`, in order. Errors: Unavailable (saying how many transactions committed first),
 * InvalidArgument.
 */
export async function commitInBatches(
  connection: EtcdConnection,
  operations: readonly TransactionOperation[],
  maxOperations = MAX_OPERATIONS_PER_TRANSACTION,
): Promise<BatchResult> {
  const batches = splitIntoBatches(operations, maxOperations);
  let revision = '0';
  for (const [index, batch] of batches.entries()) {
    try {
      const response = await connection.run(`commit ${batch.length} operations`, async (kv) => {
        const requests = await Promise.all(
          batch.map((operation) => {
            if (operation.kind === 'delete') return kv.delete().key(operation.key).op();
            const put = kv.put(operation.key).value(operation.value);
            return (operation.leaseId === undefined ? put : put.lease(operation.leaseId)).op();
          }),
        );
        return kv.kv.txn({ compare: [], success: requests, failure: [] });
      });
      revision = response.header.revision;
    } catch (error) {
      if (!(error instanceof TrellisError) || batches.length === 1) throw error;
      throw new TrellisError(
        error.code,
        `${error.message} (transaction ${index + 1} of ${batches.length}; the ${index} before it committed)`,
        {
          cause: error.cause ?? error,
        },
      );
    }
  }
  return { transactions: batches.length, revision };
}
