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
 * Options: --daemons 4,8,16,32  --objects 1000  --size 64MiB  --lease-ttl 2  --join-records 30000
 */
import type { Suite } from '../lib/suite';
import { measureJoinLimit, measureSize, type JoinLimitResult, type SizeResult } from './cluster-scale/measure';
import { DEFAULT_PLAN, planFrom } from './cluster-scale/plan';
import { report } from './cluster-scale/report';

export const suite: Suite = {
  name: 'cluster-scale',
  title: `N daemons (default ${DEFAULT_PLAN.daemonCounts.join(', ')}) on one etcd: etcd keys, bytes and watch events per object, daemon memory, join, failure detection, remote reads`,
  async run(context) {
    const plan = planFrom(context.options);
    const results: SizeResult[] = [];
    for (const count of plan.daemonCounts) results.push(await measureSize(context, plan, count));
    let limit: JoinLimitResult | undefined;
    if (plan.joinRecords > 0) limit = await measureJoinLimit(context, plan);
    return report(plan, results, limit);
  },
};
