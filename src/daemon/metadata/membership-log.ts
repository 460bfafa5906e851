/**
 * Log lines for the cluster's notable moments, from the membership's events: etcd lost and back,
 * this daemon registered again, its id taken, and other daemons joining and leaving.
 */
import { daemonLog } from '../log';
import type { InstanceStatus } from './instance-info';
import type { Membership } from './membership';

export function logMembership(membership: Membership): void {
  const self = membership.instanceId;
  const describe = (status: InstanceStatus) => ({
    peer: status.instanceId,
    host: status.hostname,
    rpc: status.rpcEndpoint,
  });
  membership.on('unavailable', (error) => daemonLog().warn({ instance: self }, `etcd lost: ${error.message}`));
  membership.on('available', () => daemonLog().info({ instance: self }, 'etcd regained'));
  membership.on('reregistered', ({ leaseId }) =>
    daemonLog().info({ instance: self, lease: leaseId }, 'registered again in etcd'),
  );
  membership.on('conflict', (error) => daemonLog().error({ instance: self }, error.message));
  membership.on('joined', (status) => {
    if (status.instanceId !== self) daemonLog().info(describe(status), `instance ${status.instanceId} joined`);
  });
  membership.on('left', (status) => {
    if (status.instanceId !== self) daemonLog().warn(describe(status), `instance ${status.instanceId} is gone`);
  });
}
