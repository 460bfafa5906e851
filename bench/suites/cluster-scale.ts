/**
 * cluster-scale: what a cluster costs as it grows (issue 14). For each cluster size N (--daemons,
 * default 4,8,16,32) one real etcd and N real daemons on this machine, each publishing
 * --objects named (so persisted) small values at once. Measured per N: etcd's keys, database
 * size, bytes written and watch events per object; etcd round trips per second while
 * publishing; each daemon's heap and RSS growth for its cluster view; how long a new daemon
 * takes to join; how long the others take to see a SIGKILLed daemon gone; and getName /
 * getMeta of a remote object against a local one. Then, apart (--join-records, default 30,000;
 * 0 skips it): whether a daemon can join a cluster already holding that many persisted objects.
 *
 * Options: --daemons 4,8,16,32  --objects 250  --size 64MiB  --lease-ttl 10  --join-records 30000
 * --publish-concurrency 2 (daemons publishing at once)
 */
import type { Suite } from '../lib/suite';
import {
  measureJoinLimit,
  measureSize,
  type JoinLimitResult,
  type SizeFailure,
  type SizeResult,
} from './cluster-scale/measure';
import { DEFAULT_PLAN, planFrom } from './cluster-scale/plan';
import { report } from './cluster-scale/report';

export const suite: Suite = {
  name: 'cluster-scale',
  title: `N daemons (default ${DEFAULT_PLAN.daemonCounts.join(', ')}) on one etcd: etcd keys, bytes and watch events per object, daemon memory, join, failure detection, remote reads`,
  async run(context) {
    const plan = planFrom(context.options);
    const results: SizeResult[] = [];
    const failures: SizeFailure[] = [];
    for (const count of plan.daemonCounts) {
      // One size failing (a loaded machine, a limit reached) still leaves the others' numbers.
      try {
        results.push(await measureSize(context, plan, count));
      } catch (error) {
        // The child's own error, without the child's command line (which lists every socket) before it.
        const message = (error as Error).message;
        const reason = (/\w*Error: [^\n]*/.exec(message)?.[0] ?? message.split('\n')[0]).slice(0, 500);
        context.log(`${count} daemons: failed: ${reason}`);
        failures.push({ daemons: count, error: reason });
      }
    }
    let limit: JoinLimitResult | undefined;
    if (plan.joinRecords > 0) limit = await measureJoinLimit(context, plan);
    return report(plan, results, failures, limit);
  },
};
