/** `trellis status`: memory, objects, clients, spill and the cluster, from one daemon. */
import { Command } from 'commander';
import { formatBytes, printJson, printTable } from '../output';
import { withClient, withCommonOptions, withJsonOption, type ListingOptions } from '../options';

export function statusCommand(): Command {
  const command = new Command('status').description('memory, objects, clients, spill and cluster of the daemon');
  return withJsonOption(withCommonOptions(command)).action((options: ListingOptions) =>
    withClient(options, async (client) => {
      const [status, cluster] = await Promise.all([client.status(), client.clusterInfo()]);
      if (options.json) return printJson({ ...status, cluster });
      const alive = cluster.instances.filter((instance) => instance.alive).length;
      const rows = [
        ['instance', `${status.instanceId} (pid ${status.pid}, version ${status.version})`],
        ['socket', status.socket],
        [
          'memory',
          `${formatBytes(status.memoryUsage)} used of ${formatBytes(status.memoryLimit)} ` +
            `(${formatBytes(status.memoryReserved)} reserved in ${status.segments} segment${status.segments === 1 ? '' : 's'}` +
            `${status.memorySpare > 0 ? ` and a ${formatBytes(status.memorySpare)} spare` : ''}, ` +
            `room for ${formatBytes(status.memoryCapacity)})`,
        ],
        ['objects', `${status.objects} (${status.names} names, ${status.streams} streams)`],
        ['clients', String(status.clients)],
        ['spilled', `${formatBytes(status.spilled.bytes)} in ${status.spilled.objects} objects`],
        [
          'cluster',
          cluster.clustered
            ? `${alive} of ${cluster.instances.length} instances alive, this one ${cluster.registered ? 'registered' : 'not registered'}`
            : 'none (no --etcd)',
        ],
      ];
      printTable(['FIELD', 'VALUE'], rows);
    }),
  );
}
