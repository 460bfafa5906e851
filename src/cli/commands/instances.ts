/** `trellis instances`: the cluster's instances as this daemon sees them. */
import { Command } from 'commander';
import { printJson, printTable } from '../output';
import { withClient, withCommonOptions, withJsonOption, type ListingOptions } from '../options';

export function instancesCommand(): Command {
  const command = new Command('instances').description("the cluster's instances, as this daemon sees them");
  return withJsonOption(withCommonOptions(command)).action((options: ListingOptions) =>
    withClient(options, async (client) => {
      const info = await client.clusterInfo();
      if (options.json) return printJson(info);
      const rows = info.instances.map((instance) => [
        String(instance.instanceId) + (instance.instanceId === info.instanceId ? '*' : ''),
        instance.hostname,
        instance.socket,
        instance.rpcEndpoint ?? '-',
        instance.alive ? 'alive' : 'gone',
      ]);
      printTable(['>INSTANCE', 'HOST', 'SOCKET', 'RPC', 'STATE'], rows);
    }),
  );
}
