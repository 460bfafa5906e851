/**
 * `trellis put FILE`: stores a file and prints the new object's id. CSV, TSV and edge lists
 * become a DataFrame (parsed by trellis/io), Arrow IPC files a DataFrame, anything else a Blob
 * of the file's bytes.
 */
import * as path from 'node:path';
import { Command } from 'commander';
import type { TrellisClient } from '../../connect';
import { ARROW_EXTENSIONS, putArrowFile } from '../files/put-arrow-file';
import { putBlobFile } from '../files/put-blob-file';
import { putTableFile, TABLE_EXTENSIONS } from '../files/put-table-file';
import { labelOption, ttlOption, withClient, withCommonOptions, type CommonOptions } from '../options';

interface PutCommandOptions extends CommonOptions {
  name?: string;
  override?: boolean;
  persist?: boolean;
  ttl?: number;
  label?: Record<string, string>;
  blob?: boolean;
}

export function putCommand(): Command {
  const command = new Command('put')
    .description(
      `store a file and print its id: ${[...TABLE_EXTENSIONS, ...ARROW_EXTENSIONS].join(' ')} as a DataFrame, ` +
        'anything else as a Blob',
    )
    .argument('<file>', 'the file to store')
    .option('--name <name>', 'publish the object under this name')
    .option('--override', 'move the name if it is taken')
    .option('--persist', 'make it visible to every instance of the cluster (durable with --data-dir)')
    .addOption(ttlOption().implies({ persist: true }))
    .addOption(labelOption('label the object (repeatable)'))
    .option('--blob', 'store the bytes as a Blob whatever the extension');
  return withCommonOptions(command).action((file: string, options: PutCommandOptions) =>
    withClient(options, async (client) => {
      const id = await putFile(client, file, options);
      if (options.persist) await client.persist(id, options.ttl === undefined ? {} : { ttl: options.ttl });
      process.stdout.write(`${id}\n`);
    }),
  );
}

async function putFile(client: TrellisClient, file: string, options: PutCommandOptions): Promise<string> {
  const extension = path.extname(file).toLowerCase();
  const putOptions = { name: options.name, override: options.override, labels: options.label };
  if (!options.blob && TABLE_EXTENSIONS.includes(extension)) return putTableFile(client, file, putOptions);
  if (!options.blob && ARROW_EXTENSIONS.includes(extension)) return putArrowFile(client, file, putOptions);
  // The labels go with the blob's seal, in the same request.
  return putBlobFile(client, file, putOptions);
}
