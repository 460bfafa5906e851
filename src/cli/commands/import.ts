/** `trellis import PATH [--name N] [--override]`: reads an archive back into the store; prints the id. */
import { Command } from 'commander';
import { progressBar, type ProgressBar } from '../progress-bar';
import { withClient, withCommonOptions, type CommonOptions } from '../options';

export function importCommand(): Command {
  const command = new Command('import')
    .description('read an archive (a directory or a .tar) into the store; prints the id')
    .argument('<path>', 'the archive')
    .option('--name <name>', 'publish the object under this name')
    .option('--override', 'move the name if it is taken');
  return withCommonOptions(command).action(
    (path: string, options: CommonOptions & { name?: string; override?: boolean }) =>
      withClient(options, async (client) => {
        let bar: ProgressBar | undefined;
        let result;
        try {
          result = await client.importArchive(path, {
            name: options.name,
            override: options.override,
            onProgress: ({ bytesDone, bytesTotal }) =>
              (bar ??= progressBar(`import ${path}`, bytesTotal)).update(bytesDone),
          });
        } finally {
          bar?.done();
        }
        process.stdout.write(`${result.id}\n`);
      }),
  );
}
