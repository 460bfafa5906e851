/**
 * The CSV reader (tokenizer, inference, value parsers) over arbitrary bytes: it finishes with
 * batches or a typed TrellisError (ParseError, InvalidArgument), never an untyped error or a hang.
 * Files are small, parsed on the calling thread (workers: 0) with small chunks so that chunk
 * boundaries fall inside rows.
 */
import * as fs from 'node:fs';
import * as fc from 'fast-check';
import { isTrellisError } from '../../src/errors';
import { parseFile } from '../../src/io/csv/parse-file';
import { tempPath } from '../fixtures/setup';
import { check, runs } from './properties';

/** Bytes that look like CSV more often than uniform bytes do. */
const csvByte = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Buffer.from('a1,".\n\r -e9tT#')) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const csvBytes = fc.array(csvByte, { maxLength: 300 }).map((bytes) => Buffer.from(bytes));

const options = fc.record({
  header: fc.boolean(),
  delimiter: fc.constantFrom(',', ';', 'whitespace', '\t'),
  quote: fc.constantFrom('"', "'", null),
  comment: fc.constantFrom('#', null, ''),
  chunkBytes: fc.integer({ min: 1, max: 64 }),
});

describe('fuzz: CSV reader', () => {
  it('arbitrary bytes parse to batches or a ParseError/InvalidArgument', async function () {
    this.timeout(Number(process.env.FUZZ_MS ?? 0) + 60_000);
    const file = tempPath('fuzz.csv');
    await check(
      fc.asyncProperty(csvBytes, options, async (bytes, given) => {
        fs.writeFileSync(file, bytes);
        try {
          await parseFile(file, { ...given, workers: 0 }, () => undefined);
        } catch (error) {
          if (!isTrellisError(error) || !['ParseError', 'InvalidArgument'].includes(error.code)) throw error;
        }
      }),
      runs(300),
    );
  });
});
