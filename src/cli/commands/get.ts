/**
 * `trellis get ID|NAME`: writes an object out, to stdout or `-o FILE`. The format follows the
 * type unless --format says otherwise: a DataFrame or RecordBatch as CSV (or arrow, json), a
 * Value as JSON, a Blob as its raw bytes, a Tensor as JSON (or raw), any other type as its
 * metadata in JSON.
 */
import { Command, Option } from 'commander';
import type { TrellisClient } from '../../connect';
import { TrellisError } from '../../errors';
import type { ObjectMeta } from '../../protocol/messages';
import { openOutput, writeBytes, type OutputSink } from '../files/output-sink';
import { writeTableArrow, writeTableCsv } from '../files/write-table';
import { toJson } from '../output';
import { progressBar } from '../progress-bar';
import { withClient, withCommonOptions, type CommonOptions } from '../options';

const FORMATS = ['csv', 'arrow', 'json', 'raw'] as const;
type Format = (typeof FORMATS)[number];

type Kind = 'table' | 'value' | 'blob' | 'tensor' | 'other';

/** The formats each kind can be written in, the default first. */
const FORMATS_OF: Record<Kind, Format[]> = {
  table: ['csv', 'arrow', 'json'],
  value: ['json'],
  blob: ['raw'],
  tensor: ['json', 'raw'],
  other: ['json'],
};

interface GetOptions extends CommonOptions {
  output?: string;
  format?: Format;
}

export function getCommand(): Command {
  const command = new Command('get')
    .description('write an object out: a DataFrame as CSV, a Value as JSON, a Blob as raw bytes (default by type)')
    .argument('<ref>', 'an object id or a name')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .addOption(new Option('--format <format>', 'the output format').choices(FORMATS));
  return withCommonOptions(command).action((ref: string, options: GetOptions) =>
    withClient(options, async (client) => {
      const meta = await client.getMeta(ref);
      const kind = kindOf(meta.typename);
      const format = options.format ?? FORMATS_OF[kind][0];
      if (!FORMATS_OF[kind].includes(format)) {
        throw new TrellisError(
          'InvalidArgument',
          `object ${meta.id} is a ${meta.typename}: it can be written as ${FORMATS_OF[kind].join(', ')}, not ${format}`,
        );
      }
      await writeObject(client, ref, meta, kind, format, options.output);
    }),
  );
}

function kindOf(typename: string): Kind {
  if (typename === 'trellis::DataFrame' || typename === 'trellis::RecordBatch') return 'table';
  if (typename === 'trellis::Value') return 'value';
  if (typename === 'trellis::Blob') return 'blob';
  if (typename.startsWith('trellis::Tensor')) return 'tensor';
  return 'other';
}

async function writeObject(
  client: TrellisClient,
  ref: string,
  meta: ObjectMeta,
  kind: Kind,
  format: Format,
  path: string | undefined,
): Promise<void> {
  const bar = progressBar(`get ${ref}`, meta.nbytes);
  try {
    if (kind === 'table' && format === 'csv') {
      return await writeTableCsv(
        await client.get(meta.id),
        path,
        () => openOutput(undefined),
        (bytes) => bar.update(bytes),
      );
    }
    await withSink(path, async (sink) => {
      if (format === 'arrow') return writeTableArrow(await client.get(meta.id), sink, (bytes) => bar.update(bytes));
      if (format === 'raw') {
        const value = await client.get(meta.id);
        return writeBytes(
          sink,
          kind === 'blob' ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
          (bytes) => bar.update(bytes),
        );
      }
      const value = kind === 'other' ? meta : await client.get(meta.id);
      const json = Buffer.from(toJson(kind === 'table' ? value.toArray() : value) + '\n');
      await sink.write(json, 0, json.length);
    });
  } finally {
    bar.done();
  }
}

async function withSink(path: string | undefined, work: (sink: OutputSink) => Promise<void>): Promise<void> {
  const sink = await openOutput(path);
  try {
    await work(sink);
  } finally {
    await sink.close();
  }
}
