/**
 * Parsing one chunk of a file: the rows that start in [start, end), plus the tail of the last
 * of them when it runs past `end`. A worker thread or the calling thread runs this; either way
 * the result is plain typed arrays and numbers, ready to transfer.
 *
 * A chunk after the first is parsed speculatively: it starts after the first newline at or after
 * `start`, assuming that newline is not inside a quoted field. The caller accepts the result only
 * if it starts exactly where the previous chunk's rows ended (see ordered-chunks.ts); a problem
 * found while speculating is reported, not thrown, because it may not be real.
 */
import type { ColumnBuffers } from './buffers';
import { createColumnBuilder, NullTexts } from './columns';
import { FileWindow, OVERREAD_BYTES } from './file-window';
import type { CsvColumnType, ParseSettings } from './options';
import { FAILED, LF, NEED_MORE, RowTokenizer, STOPPED } from './tokenizer';

/** What every chunk of one file is parsed with; plain data, sent to workers once. */
export interface ChunkPlan {
  settings: ParseSettings;
  types: CsvColumnType[];
  /** Whether each type was given by the caller (else inferred), for error messages. */
  typeGiven: boolean[];
  /** From the sample, to size the builders: file bytes per row, and string bytes per file byte. */
  bytesPerRow: number;
  textShare: number[];
}

export interface ChunkTask {
  index: number;
  start: number;
  end: number;
  /** Whether `start` is known to be where a row starts; otherwise the chunk starts after the next newline. */
  exact: boolean;
}

/** A problem in a chunk. `line` counts newlines from the chunk's start (0 = its first line). */
export interface ChunkError {
  line: number;
  /** 1-based. */
  column: number;
  message: string;
}

export interface ChunkOutcome {
  index: number;
  /** The file offset the chunk's rows start at. */
  start: number;
  /** Where the first row at or after the task's end starts (or the file size). */
  end: number;
  /** Newlines in [start, end). */
  lines: number;
  rows: number;
  columns: ColumnBuffers[];
  error?: ChunkError;
}

/** Rows per tokenized block aim at this many fields, so the block's arrays stay in cache. */
const BLOCK_FIELDS = 8192;
/** Builders start this much above the sample's estimate, so most chunks never grow them. */
const CAPACITY_MARGIN = 1.15;
/** How much of a bad field an error message quotes. */
const QUOTED_TEXT_LIMIT = 60;

export class ChunkParser {
  private readonly window: FileWindow;
  private readonly tokenizer: RowTokenizer;
  private readonly nulls: NullTexts;

  constructor(
    fd: number,
    fileSize: number,
    private readonly plan: ChunkPlan,
  ) {
    this.window = new FileWindow(fd, fileSize);
    const width = plan.types.length;
    this.tokenizer = new RowTokenizer(
      plan.settings,
      width,
      true,
      Math.max(16, Math.floor(BLOCK_FIELDS / Math.max(1, width))),
    );
    this.nulls = new NullTexts(plan.settings);
  }

  parse(task: ChunkTask): ChunkOutcome {
    const { window, tokenizer, plan } = this;
    const start = task.exact ? task.start : this.findLineStart(task.start, task.end);
    const span = Math.max(0, task.end - start);
    const estimatedRows = Math.ceil((span / plan.bytesPerRow) * CAPACITY_MARGIN) + 16;
    const builders = plan.types.map((type, column) =>
      createColumnBuilder(type, this.nulls, estimatedRows, Math.ceil(span * plan.textShare[column] * CAPACITY_MARGIN)),
    );
    const outcome: ChunkOutcome = { index: task.index, start, end: start, lines: 0, rows: 0, columns: [] };
    if (start >= task.end || start >= window.fileSize) {
      outcome.columns = builders.map((builder) => builder.finish());
      return outcome;
    }

    window.load(start, span + OVERREAD_BYTES);
    tokenizer.pos = 0;
    tokenizer.line = 0;
    tokenizer.error = undefined;
    for (;;) {
      const status = tokenizer.run(window.bytes, window.length, task.end - window.base, window.atEof);
      for (let column = 0; column < builders.length && tokenizer.rows > 0; column++) {
        const badRow = builders[column].append(window.bytes, tokenizer, column);
        if (badRow >= 0) {
          outcome.error = this.describeBadValue(column, badRow);
          return outcome;
        }
      }
      outcome.rows += tokenizer.rows;
      if (status === FAILED) {
        outcome.error = tokenizer.error;
        return outcome;
      }
      if (status === STOPPED) break;
      if (status === NEED_MORE) tokenizer.pos -= window.advance(tokenizer.pos);
    }
    outcome.end = window.base + tokenizer.pos;
    outcome.lines = tokenizer.line;
    outcome.columns = builders.map((builder) => builder.finish());
    return outcome;
  }

  /** The offset just after the first newline at or after `offset - 1`, or `limit` if there is none before it. */
  private findLineStart(offset: number, limit: number): number {
    const { window } = this;
    if (offset === 0) return 0;
    window.load(offset - 1, OVERREAD_BYTES);
    for (;;) {
      const newline = window.bytes.indexOf(LF, 0);
      if (newline < window.length) return window.base + newline + 1;
      if (window.atEof || window.base + window.length >= limit) return Math.min(limit, window.fileSize);
      window.advance(window.length);
    }
  }

  private describeBadValue(column: number, row: number): ChunkError {
    const { tokenizer, window, plan } = this;
    const field = row * tokenizer.width + column;
    const raw = window.bytes.toString('utf8', tokenizer.starts[field], tokenizer.ends[field]);
    const text = raw.length > QUOTED_TEXT_LIMIT ? `${raw.slice(0, QUOTED_TEXT_LIMIT)}...` : raw;
    const type = plan.types[column];
    const why = plan.typeGiven[column]
      ? 'as columnTypes says'
      : 'as inferred from a sample of rows; pass columnTypes (or sampleRows: Infinity) to change it';
    return {
      line: tokenizer.rowLines[row],
      column: column + 1,
      message: `${JSON.stringify(text)} is not a valid ${type} (the column is ${type}, ${why})`,
    };
  }
}
