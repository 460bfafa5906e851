/** `trellis export ID|NAME PATH`: writes an object as an archive (a directory or a .tar); prints its topHash. */
import { Command } from 'commander';
import { progressBar, type ProgressBar } from '../progress-bar';
import { withClient, withCommonOptions, type CommonOptions } from '../options';

export function exportCommand(): Command {
  const command = new Command('export')
    .description('write an object to an archive (a new directory, or a file ending in .tar); prints its topHash')
    .argument('<ref>', 'an object id or a name')
    .argument('<path>', 'the archive to create');
  return withCommonOptions(command).action((ref: string, path: string, options: CommonOptions) =>
    withClient(options, async (client) => {
      let bar: ProgressBar | undefined;
      let result;
      try {
        result = await client.exportArchive(ref, path, {
          onProgress: ({ bytesDone, bytesTotal }) =>
            (bar ??= progressBar(`export ${ref}`, bytesTotal)).update(bytesDone),
        });
      } finally {
        bar?.done();
      }
      process.stdout.write(`${result.topHash}\n`);
    }),
  );
}
