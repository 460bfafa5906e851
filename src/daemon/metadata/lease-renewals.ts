/**
 * When a lease was last surely renewed, on a monotonic clock (which counts a SIGSTOP, unlike a
 * process's own sense of time): the moment the keep-alive etcd last answered was sent, or the
 * grant was asked for. etcd cannot expire the lease before that plus its TTL; past it, the
 * lease may be gone, and whoever held keys on it may have lost them to other daemons.
 *
 * Attached when the lease is granted, before anyone else listens, so no renewal goes uncounted
 * (a daemon taking its id back may wait a whole TTL before its membership exists).
 */
import { performance } from 'node:perf_hooks';
import type { Lease } from 'etcd3';

/** Keep-alives sent and not answered yet that are remembered (etcd answers them in order). */
const MAX_UNANSWERED = 8;

export class LeaseRenewals {
  private renewedAt: number;
  /** When each keep-alive still unanswered was sent, oldest first. */
  private unanswered: number[] = [];

  /** `askedAt`: performance.now() before the grant request went out. */
  constructor(lease: Lease, askedAt: number) {
    this.renewedAt = askedAt;
    lease.on('keepaliveEstablished', () => {
      // A new keep-alive stream: what the old one sent will not be answered.
      this.unanswered = [];
    });
    lease.on('keepaliveFired', () => {
      this.unanswered.push(performance.now());
      if (this.unanswered.length > MAX_UNANSWERED) this.unanswered.shift();
    });
    lease.on('keepaliveSucceeded', () => {
      const sentAt = this.unanswered.shift();
      if (sentAt !== undefined && sentAt > this.renewedAt) this.renewedAt = sentAt;
    });
  }

  /** Milliseconds since the lease was last surely renewed. */
  msSinceRenewal(): number {
    return performance.now() - this.renewedAt;
  }
}
