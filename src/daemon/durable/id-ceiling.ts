/**
 * A ceiling on the object ids this daemon hands out, kept in the data dir's catalog, so that a
 * restart never hands out an id again even when the clock has stepped back meanwhile. The
 * catalog's own objects floor the ids of a restart (ObjectTable.restore), but not the ids handed
 * out and never stored: those of objects never persisted, and the blocks of ids granted to put
 * rings (put-rings.ts), which clients name objects with before the daemon sees them.
 *
 * The ceiling runs CEILING_LEAD_MICROS ahead of the ids: written once at start (awaited), then
 * raised in the background each time the ids have used half of the lead. The ids follow the clock
 * (put rings' blocks stay within 50 ms of it), so that is one small catalog write every 30 s of
 * activity at most, and nothing on the put path. A restart starts past the ceiling written last,
 * so up to a lead ahead of the clock, and its ids then count from there (IdGenerator.advanceTo):
 * put rings still get whole blocks.
 */
import { daemonLog } from '../log';
import { SEQUENCE_SPACE, type IdGenerator } from '../../protocol/ids';
import type { DurableStore } from './durable-store';

/** How far the ceiling is written ahead of the ids (in microseconds: the ids' clock). */
export const CEILING_LEAD_MICROS = 60_000_000;

export class IdCeiling {
  private writing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly ids: IdGenerator,
    private readonly store: DurableStore,
  ) {}

  /**
   * Starts the ids past the ceiling written last, and writes the next one. A catalog that cannot
   * be written (a full disk) does not keep the daemon from starting: it is tried again later.
   */
  async start(): Promise<void> {
    const floor = this.store.idCeiling;
    if (floor !== undefined) this.ids.advanceTo(floor);
    const from = this.ids.current;
    await this.raise(from).catch((error: unknown) => this.failed(error, from));
  }

  /** Waits for a write under way; no more after it. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.writing;
  }

  /** Writes a ceiling CEILING_LEAD_MICROS past `from`, then watches for the ids to use half of it. */
  private async raise(from: number): Promise<void> {
    const ceiling = Math.min(from + CEILING_LEAD_MICROS, SEQUENCE_SPACE - 1);
    await this.store.setIdCeiling(ceiling);
    this.watch(ceiling - CEILING_LEAD_MICROS / 2);
  }

  private watch(mark: number): void {
    if (this.stopped) return;
    this.ids.watchPast(mark, (last) => {
      if (this.stopped) return;
      this.writing = this.raise(last).catch((error: unknown) => this.failed(error, last));
    });
  }

  /** Tried again after half a lead of ids (not at each id); the ceiling written last holds meanwhile. */
  private failed(error: unknown, last: number): void {
    daemonLog().warn(`could not raise the id ceiling: ${(error as Error).message}`);
    this.watch(last + CEILING_LEAD_MICROS / 2);
  }
}
