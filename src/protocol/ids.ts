/**
 * Object IDs: 'o' + 16 hex digits. The first 4 digits are the instance id, so IDs are unique
 * across a cluster; the other 12 come from a counter seeded with the clock in microseconds, so
 * a restarted daemon does not reuse its earlier IDs. IDs say nothing about where bytes live.
 */
import { TrellisError } from '../errors';

export const ID_PATTERN = /^o[0-9a-f]{16}$/;
export const SEQUENCE_SPACE = 2 ** 48;
export const MAX_INSTANCE_ID = 0xffff;

export class IdGenerator {
  private last = 0;
  /** Once the counter reaches this, `reached` is called (once; see watchPast). */
  private mark = Infinity;
  /** Added to the clock after a restart past it (advanceTo). */
  private offset = 0;
  private reached?: (last: number) => void;

  constructor(private readonly instanceId: number) {
    if (!Number.isInteger(instanceId) || instanceId < 0 || instanceId > MAX_INSTANCE_ID) {
      throw new TrellisError('InvalidArgument', `instance id ${instanceId} is outside 0..${MAX_INSTANCE_ID}`);
    }
  }

  /** After a restart: never hand out `id` or anything before it again, whatever the clock says. */
  advancePast(id: string): void {
    const sequence = parseInt(id.slice(5), 16);
    if (instanceOf(id) === this.instanceId && sequence > this.last) this.last = sequence;
  }

  /**
   * After a restart: never hand out `sequence` or anything before it again (an id ceiling kept on
   * disk). Past the clock, the counter's clock runs from there on: reserve keeps blocks within
   * its lead of that, and would otherwise cut each short to the fewest ids until the clock caught up.
   */
  advanceTo(sequence: number): void {
    if (sequence > this.last) this.last = sequence;
    this.offset = Math.max(this.offset, sequence - nowMicros());
  }

  /** The sequence the next id would take at least: the clock's, or past the last one handed out. */
  get current(): number {
    return Math.max(this.now(), this.last + 1);
  }

  /**
   * Calls `reached` (once) when the counter reaches `mark`: how a durable ceiling is raised before
   * ids get to it (durable/id-ceiling.ts), at no cost per id but one comparison.
   */
  watchPast(mark: number, reached: (last: number) => void): void {
    this.mark = mark;
    this.reached = reached;
    this.checkMark();
  }

  next(): string {
    const now = this.now();
    this.last = now > this.last ? now : (this.last + 1) % SEQUENCE_SPACE;
    if (this.last >= this.mark) this.checkMark();
    return formatId(this.instanceId, this.last);
  }

  /**
   * A block of ids never handed out before or after (a put ring's, which its client names before
   * the daemon sees them): the sequence of the first and how many, the others following it.
   * `most` of them, or fewer (down to `least`) so that the counter stays within `leadMicros` of
   * the clock: ids a client was granted and never used would otherwise run it ahead of the
   * clock, and a daemon restarted within that lead would hand out its earlier ids again.
   */
  reserve(most: number, least: number, leadMicros: number): { first: number; count: number } {
    const now = this.now();
    let first = Math.max(now, this.last + 1);
    const count = Math.min(most, Math.max(least, now + leadMicros - first));
    if (first + count > SEQUENCE_SPACE) first = 0;
    this.last = first + count - 1;
    if (this.last >= this.mark) this.checkMark();
    return { first, count };
  }

  private now(): number {
    return this.offset === 0 ? nowMicros() : (nowMicros() + this.offset) % SEQUENCE_SPACE;
  }

  private checkMark(): void {
    if (this.last < this.mark || !this.reached) return;
    const reached = this.reached;
    this.mark = Infinity;
    this.reached = undefined;
    reached(this.last);
  }
}

/** The clock in microseconds, within the sequence space. */
const nowMicros = (): number => Math.floor(performance.timeOrigin * 1000 + performance.now() * 1000) % SEQUENCE_SPACE;

/** Character codes of the hex digits 0-9a-f. */
const HEX_CODES = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102];
const hexCode = (word: number, shift: number): number => HEX_CODES[(word >>> shift) & 15];

/** The id of `sequence` on instance `instanceId`. */
export function formatId(instanceId: number, sequence: number): string {
  return formatIdOfWords(instanceId, Math.floor(sequence / 2 ** 32), sequence >>> 0);
}

/**
 * The id of the sequence whose top 16 bits are `sequenceHigh` and low 32 bits `sequenceLow` (a
 * put ring record's words). Built as one flat string from its 17 character codes: a daemon
 * registering ring puts names every object this way, and toString(16) of a sequence above 2^31
 * (a heap number), padStart and concatenation cost about twice as much, and leave a rope that
 * is flattened again when the id is first hashed.
 */
export function formatIdOfWords(instanceId: number, sequenceHigh: number, sequenceLow: number): string {
  return String.fromCharCode(
    111, // 'o'
    hexCode(instanceId, 12),
    hexCode(instanceId, 8),
    hexCode(instanceId, 4),
    hexCode(instanceId, 0),
    hexCode(sequenceHigh, 12),
    hexCode(sequenceHigh, 8),
    hexCode(sequenceHigh, 4),
    hexCode(sequenceHigh, 0),
    hexCode(sequenceLow, 28),
    hexCode(sequenceLow, 24),
    hexCode(sequenceLow, 20),
    hexCode(sequenceLow, 16),
    hexCode(sequenceLow, 12),
    hexCode(sequenceLow, 8),
    hexCode(sequenceLow, 4),
    hexCode(sequenceLow, 0),
  );
}

/** detachedId's codes of one id ('o' and 16 hex digits). */
const ID_CODES: number[] = new Array<number>(17).fill(0);

/**
 * A copy of an id decoded from a frame that keeps nothing else alive. msgpackr decodes a small
 * frame's short strings as slices of one string of the whole frame, so an id kept for as long as
 * its object is held kept that frame's string too: ~370 B per Tensor got over the socket. An id
 * is copied as one flat string of its 17 codes (40 B); anything else as a slice of a new string.
 */
export function detachedId(id: string): string {
  if (id.length !== ID_CODES.length) return (' ' + id).slice(1);
  for (let i = 0; i < ID_CODES.length; i++) ID_CODES[i] = id.charCodeAt(i);
  return String.fromCharCode(...ID_CODES);
}

export function sequenceOf(id: string): number {
  return parseInt(id.slice(5), 16);
}

/** Characters in an id: 'o' and 16 hex digits. */
const ID_LENGTH = 17;

/**
 * Whether `value` is an id (ID_PATTERN), read character by character: every request by id
 * checks it, and a regular expression is compiled at its first test, which cost a fresh
 * process's first get ~50 µs.
 */
export function isObjectId(value: unknown): value is string {
  if (typeof value !== 'string' || value.length !== ID_LENGTH || value.charCodeAt(0) !== 111) return false;
  for (let i = 1; i < ID_LENGTH; i++) {
    const code = value.charCodeAt(i);
    // 0-9 or a-f
    if (!((code >= 48 && code <= 57) || (code >= 97 && code <= 102))) return false;
  }
  return true;
}

export function instanceOf(id: string): number {
  return parseInt(id.slice(1, 5), 16);
}
