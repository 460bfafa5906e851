/** What the cluster-scale suite runs, from its defaults and the command line's options. */

export interface ScalePlan {
  /** Cluster sizes, one fresh etcd and set of daemons each (--daemons 4,8,16,32). */
  daemonCounts: number[];
  /** Named (so persisted) small objects each daemon publishes (--objects). */
  objectsPerDaemon: number;
  /** Values per putMany call. */
  batch: number;
  /** Each daemon's --size (--size). */
  daemonSize: string;
  /**
   * --lease-ttl of every daemon, seconds (--lease-ttl): the daemon's default. With a shorter one,
   * many daemons on a loaded 2-core machine send keep-alives late, lose their leases and
   * register again in the middle of the measurement.
   */
  leaseTtlSeconds: number;
  /** Persisted objects in the cluster a daemon then tries to join (--join-records; 0 skips it). */
  joinRecords: number;
  /** getName / getMeta calls timed per kind. */
  readSamples: number;
  /** Daemons started at once (each start is a new Node process running bin/trellisd). */
  startConcurrency: number;
  /** Daemons publishing at once (all of them at once can starve etcd on a loaded 2-core machine). */
  publishConcurrency: number;
}

export const DEFAULT_PLAN: ScalePlan = {
  daemonCounts: [4, 8, 16, 32],
  objectsPerDaemon: 250,
  batch: 250,
  daemonSize: '64MiB',
  leaseTtlSeconds: 10,
  joinRecords: 30_000,
  readSamples: 300,
  startConcurrency: 4,
  publishConcurrency: 2,
};

function positiveInteger(option: string, text: string, minimum = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum)
    throw new Error(`--${option} must be an integer of at least ${minimum}, not ${JSON.stringify(text)}`);
  return value;
}

/** The plan for these options; other suites' options are left alone, but a bad value of ours throws. */
export function planFrom(options: ReadonlyMap<string, string>): ScalePlan {
  const plan = { ...DEFAULT_PLAN };
  const daemons = options.get('daemons');
  if (daemons !== undefined)
    plan.daemonCounts = daemons.split(',').map((count) => positiveInteger('daemons', count.trim(), 2));
  const objects = options.get('objects');
  if (objects !== undefined) plan.objectsPerDaemon = positiveInteger('objects', objects);
  const size = options.get('size');
  if (size !== undefined) plan.daemonSize = size;
  const ttl = options.get('lease-ttl');
  if (ttl !== undefined) plan.leaseTtlSeconds = positiveInteger('lease-ttl', ttl, 2);
  const publishConcurrency = options.get('publish-concurrency');
  if (publishConcurrency !== undefined)
    plan.publishConcurrency = positiveInteger('publish-concurrency', publishConcurrency);
  const joinRecords = options.get('join-records');
  if (joinRecords !== undefined) plan.joinRecords = positiveInteger('join-records', joinRecords, 0);
  plan.batch = Math.min(plan.batch, plan.objectsPerDaemon);
  return plan;
}

/** The name a daemon gives its k-th object: scale/<instance id>/<k>. */
export function scaleName(instanceId: number, k: number): string {
  return `scale/${instanceId}/${k}`;
}
